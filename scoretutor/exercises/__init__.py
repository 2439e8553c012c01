"""Check-yourself exercises: each notebook's checker functions live in a module named after it."""
