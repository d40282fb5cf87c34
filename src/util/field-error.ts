/** Input that is wrong in one named field (`agents.0.weight`, say): the message names the field, and forms show it beside that field. */
export class FieldError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(`${field}: ${message}`)
    this.name = 'FieldError'
    this.field = field
  }
}
