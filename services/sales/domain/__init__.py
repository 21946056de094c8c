"""The sales domain: deals through the sales process, the catalogue. Pure Python."""
