"""What participants see: the page shell, the string catalogues, static files."""
