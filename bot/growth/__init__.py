"""Growth: affiliates and commissions, gifts, the messages that bring learners back
(abandoned-checkout reminders, win-back offers) and the audiences a creator may write to
(segments). No aiogram here."""
