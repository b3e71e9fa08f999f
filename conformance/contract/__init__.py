"""The contract the suite judges by: ``CONTRACT.md``, shipped with the suite (read it through
:mod:`conformance.catalogue`)."""
