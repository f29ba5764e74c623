"""A seeded, replayable, randomized two-sided fault harness for the sync (issue 11's proof).

``scenario`` draws a scenario from a seed; ``harness`` runs it on the local stack, with
``driver`` playing the platform and ``scheduler`` interleaving the actors at the yield points
``instrument`` puts around every DynamoDB and Salesforce request; ``ledger`` records what each side
did and what crossed the wire; ``oracle`` checks the invariants on it. ``cli`` is
``python -m sfsync_fuzz``.
"""
