"""The persistent scheduler (drip, reminders, expiry, broadcasts) and its one Sender."""
