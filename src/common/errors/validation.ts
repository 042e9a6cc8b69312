import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError, FieldError } from './app-error.js';
import { CommonError } from './error-code.js';

/** Flattens class-validator's tree into one entry per failing field, with dotted paths. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const result: FieldError[] = [];
  for (const error of errors) {
    const field = parent ? `${parent}.${error.property}` : error.property;
    for (const [constraint, message] of Object.entries(error.constraints ?? {})) {
      const readable = constraint === 'whitelistValidation' ? `${field} is not a known field` : message.replace(error.property, field);
      result.push({ field, message: readable, code: constraint === 'whitelistValidation' ? 'unknown_field' : constraint });
    }
    if (error.children && error.children.length > 0) result.push(...flattenValidationErrors(error.children, field));
  }
  return result;
}

export function validationError(errors: FieldError[]): AppError {
  const detail = errors.length === 0 ? 'The request is invalid' : errors.map((e) => e.message).join('; ');
  return new AppError(CommonError.ValidationFailed, detail, { errors });
}

/**
 * A route that declares a body needs one: without it (nothing sent, or a content type other than
 * JSON, which is not read) the answer is 422, as the OpenAPI description's `required` body says,
 * instead of validating an empty object.
 */
class AppValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.data === undefined && value === undefined && this.toValidate(metadata)) {
      throw validationError([{ field: 'body', message: 'A JSON request body is required', code: 'isDefined' }]);
    }
    return super.transform(value, metadata) as Promise<unknown>;
  }
}

/** The one global ValidationPipe: whitelist, reject unknown fields, transform, 422 with one entry per field. */
export function createValidationPipe(): ValidationPipe {
  return new AppValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => validationError(flattenValidationErrors(errors)),
  });
}
