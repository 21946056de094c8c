"""The orders domain: orders from won deals and their lifecycle. Pure Python."""
