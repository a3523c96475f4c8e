"""HL7 v2.5.1 for the hospital's integration engine: ORM^O01 orders built and validated with hl7apy
(`messages`), sent over MLLP and acknowledged (`mllp`), as an event consumer (`consumer`)."""
