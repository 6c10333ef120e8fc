"""Keys and tenants: who is calling, what they may see, and how much they may ask for."""
