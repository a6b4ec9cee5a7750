"""Everything that imports torch. Imported only when an algorithm runs."""
