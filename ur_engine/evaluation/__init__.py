"""Evaluation of the criteria: the compiler turns each rule set into plans of stages, durable-rules runs them
(``evaluator.DurableEvaluator``, the only code that talks to it) and ``ReferenceEvaluator`` runs the same plans
in plain Python for the tests."""
