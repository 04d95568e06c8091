"""Pure rules of the catalog: no I/O, stdlib and python-stdnum only. The place to read the policy."""
