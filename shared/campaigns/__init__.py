"""Campaigns: one email to a list or a segment, sent once per person, under the rules of the scenarios' sends."""
