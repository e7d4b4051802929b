"""parcours' domain code, shared by every Lambda function and by the local tools.

In the order data flows, each package importing only those before it (checked by `lint-imports`, pyproject.toml):
the base (this package's modules: clock, settings, secrets, clients, storage, events, outbox, deadletters), then
sources -> people -> journeys -> messages. The base imports none of the four.
"""
