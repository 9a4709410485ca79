"""The Kopf operator: CurationJob, JudgeTraining and GRPORun become Jobs. Never imports torch."""
