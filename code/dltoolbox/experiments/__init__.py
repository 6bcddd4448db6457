"""Each chapter's experiments, apart from the ideas: the validation sweeps (:mod:`.sweeps`, one registry and
one command) and the trained runs too costly for a notebook, stored with their manifest (:mod:`.stored`)."""
