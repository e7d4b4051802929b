"""Where events come from: webhook signatures, Shopify, WooCommerce, generic webhooks, the tracking API, ingestion.

Imports only the base (shared's top-level modules); the packages above it (people, journeys, messages) import it.
"""
