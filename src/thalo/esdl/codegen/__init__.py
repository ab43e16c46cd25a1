"""Code generators: ESDL schema -> Python guest module, TypeScript declarations."""
