"""Growth: affiliates and commissions, gifts, abandoned-checkout reminders, segments."""
