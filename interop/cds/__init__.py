"""CDS Hooks 2.0: discovery, the two services, cards, feedback, and the EHR's signed-JWT authentication."""
