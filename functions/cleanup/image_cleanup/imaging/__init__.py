"""The image stages of a pair, in the order the pipeline runs them: ``load`` (bytes to validated
pixels), ``hd_strategy`` (the region sent, and the answer brought back to it), ``merge`` (the answer's
pixels inside the mask only), ``encode`` (the result's bytes); ``limits`` holds every size limit."""
