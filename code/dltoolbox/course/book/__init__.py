"""The book's own machinery (Sphinx extensions and build steps), apart from the modules that teach ideas."""
