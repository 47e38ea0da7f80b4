"""Model back ends behind the Captioner and Judge interfaces (see base.py)."""
