"""What ``sonomap register-batch`` prints: the batch summary dict (:func:`registration.batch.register_batch`,
also batch_report.json) as lines for the terminal, one per case that needs a look.

Input: the summary dict and the dataset path as given. Output: the lines; nothing is written.
Cases are named by id, never by a path under the cases folder (often named after the patient).
"""

from __future__ import annotations

from registration.batch_dataset import REMOVED


def summary_lines(s: dict, out) -> list[str]:
    lines = [
        f"registered {s['registered']}, already done {s['skipped_done']}, failed {s['failed']}, "
        f"held for review {s['held_for_review']}, pending {s['pending']} -> {out} "
        f"(splits {s['splits']}; details in batch_report.json)"
    ]
    lines += [f"  pending: {w['id']} lacks {', '.join(w['lacks'])}" for w in s["pending_cases"]]
    lines += [
        f"  review: {h['id']} quality {h['quality']:.2f} (weakest: {h['weakest']}) {h['qa']}"
        for h in s["low_quality"]
    ]
    lines += [f"  failed: {f['error']}" for f in s["failures"]]
    for a in s["registered_again"]:
        if a.get("failed"):  # its new registration failed: it is listed as failed and removed, not registered
            lines.append(
                f"  not registered again: {a['id']} ({a['reason']}; its new registration failed, see failed)"
            )
            continue
        moved = f"; old copies in {', '.join(a['moved'])}" if a["moved"] else ""
        lines.append(f"  registered again: {a['id']} ({a['reason']}{moved})")
    if s["removed"]:
        lines.append(f"removed from the dataset: {s['removed']} (image and label moved to {REMOVED}/)")
    lines += [f"  removed: {r['id']} ({r['reason']})" for r in s["removed_cases"]]
    lines += [f"  merged (near-duplicate images, one split): {' + '.join(g)}" for g in s["merged_cases"]]
    lines += [
        f"  moved: {m['id']} from {m['from']} to {m['to']} (its patient now has cases there: one split per patient)"
        for m in s["moved_cases"]
    ]
    lines += [
        f"warning: split '{split}' is empty now (its cases left the dataset or moved to join their patient); "
        "sonomap train needs cases in every split: add cases, or register into a new dataset for a fresh split"
        for split in s["emptied_splits"]
    ]
    return lines
