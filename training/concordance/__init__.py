"""``sonomap concordance``: the live prediction at each biopsy against the pathology registered onto it."""
