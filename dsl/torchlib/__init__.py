"""What netdsl knows of torch, derived from torch itself: the registry of layers and
functions, shape rules and meta execution, initialisers and init recipes."""
