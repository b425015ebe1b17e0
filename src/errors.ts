/** Errors a user can act on. The CLI prints `message` alone (no stack) and exits with `exitCode`. */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = "UserError";
  }
}

/** Bad input data: names the file, the 1-based line (when there is one) and the field. */
export class InputError extends UserError {
  constructor(readonly file: string, readonly line: number | null, readonly field: string | null, detail: string) {
    super(`${file}${line != null ? `:${line}` : ""}${field ? `: field "${field}"` : ""}: ${detail}`, 2);
    this.name = "InputError";
  }
}
