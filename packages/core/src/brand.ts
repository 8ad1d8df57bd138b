/** A nominal type: a value of `T` that has passed the one factory allowed to make a `B`. */
export type Brand<T, B extends string> = T & { readonly __brand: B };

/** Raised by the vocabulary factories; `field` names what was wrong so APIs can report it. */
export class InvalidValueError extends Error {
  readonly code = 'invalid_value' as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidValueError';
  }
}
