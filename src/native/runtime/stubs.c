/* Step (a): every verb goes to the Python runtime. */
#include "ops.h"

int cmd_create(const struct opts *o) { (void)o; fallback("not yet native"); }
int cmd_run(const struct opts *o) { (void)o; fallback("not yet native"); }
int cmd_start(const struct opts *o) { (void)o; fallback("not yet native"); }
int cmd_state(const struct opts *o) { (void)o; fallback("not yet native"); }
int cmd_kill(const struct opts *o) { (void)o; fallback("not yet native"); }
int cmd_delete(const struct opts *o) { (void)o; fallback("not yet native"); }
