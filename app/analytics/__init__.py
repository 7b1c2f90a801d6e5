"""Funnel and outcome figures (queries and rollups) shared by the back office and the creditor API, and
the statistics the experiments' results are read with (`intervals`)."""
