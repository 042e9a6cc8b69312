import { ValidationError } from '@nestjs/common';
import { flattenValidationErrors, validationError } from './validation.js';

function error(property: string, constraints?: Record<string, string>, children: ValidationError[] = []): ValidationError {
  return { property, constraints, children };
}

describe('flattenValidationErrors', () => {
  it('gives one entry per failing constraint with dotted paths for nested fields', () => {
    const flat = flattenValidationErrors([
      error('name', { isLength: 'name must be longer than or equal to 1 characters' }),
      error('resources', undefined, [error('cpu', { max: 'cpu must not be greater than 4' })]),
      error('extra', { whitelistValidation: 'property extra should not exist' }),
    ]);
    expect(flat).toEqual([
      { field: 'name', message: 'name must be longer than or equal to 1 characters', code: 'isLength' },
      { field: 'resources.cpu', message: 'resources.cpu must not be greater than 4', code: 'max' },
      { field: 'extra', message: 'extra is not a known field', code: 'unknown_field' },
    ]);
  });

  it('joins the messages into a detail a person can read', () => {
    const appError = validationError([
      { field: 'a', message: 'a is wrong' },
      { field: 'b', message: 'b is wrong' },
    ]);
    expect(appError.status).toBe(422);
    expect(appError.detail).toBe('a is wrong; b is wrong');
  });
});
