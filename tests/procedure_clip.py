"""Test helper: the synthetic biopsy procedure clip (:mod:`registration.sim.procedure`)."""

from registration.sim.procedure import NO_FIRE, PROCEDURE, THROW_MM, write_procedure_clip

__all__ = ["NO_FIRE", "PROCEDURE", "THROW_MM", "write_procedure_clip"]
