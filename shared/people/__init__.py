"""Who the events are about: contacts, identities, consent, suppression, subscriptions, scores, lists, CRM handoff.

Imports only sources and the base, never journeys or messages: a contact is kept the same whatever scenario runs.
"""
