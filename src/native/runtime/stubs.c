/* Until create.c: create and run go to the Python runtime. */
#include "ops.h"

int cmd_create(const struct opts *o) { (void)o; fallback("not yet native"); }
int cmd_run(const struct opts *o) { (void)o; fallback("not yet native"); }
