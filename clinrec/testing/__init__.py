"""Support for ClinRec's tests that is not a fixture itself: e.g. a TCP proxy that breaks a link on purpose."""
