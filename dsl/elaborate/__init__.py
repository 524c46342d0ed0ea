"""IR -> plan: the build-time evaluator, blocks, derived nets and surgery, static checks,
shapes checked on meta, and the size limits a plan must respect."""
