"""What goes out: a journey's steps as they act (actions), email and SMS sending, templates, discounts, SES feedback.

The top of the flow: may import journeys, people, sources and the base; nothing in shared imports it.
"""
