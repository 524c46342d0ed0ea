"""Text <-> IR: the `.net` reader (Lark), the YAML reader, the printers, and the loader that
reads files and follows their imports. Imports neither torch nor any later stage."""
