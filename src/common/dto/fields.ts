import { applyDecorators } from '@nestjs/common';
import {
  ApiProperty,
  ApiPropertyOptional,
  ApiSchema,
  type ApiPropertyOptions,
  type ApiSchemaOptions,
  type SchemaObject,
} from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsOptional, ValidateBy, ValidateIf, ValidateNested, type ValidationArguments } from 'class-validator';

/**
 * Field decorators that apply a validation rule and its OpenAPI description together, so that
 * `/docs-json` allows exactly what the ValidationPipe accepts (a schema-driven fuzzer checks both
 * ways: see test/foundation/openapi-fuzz.e2e-spec.ts).
 *
 * Patterns are written for every engine that reads them: JavaScript (the validation, with the `u`
 * flag), Python (schemathesis generates from them) and Rust (its validator). So they spell out
 * their character classes (`[0-9]`, never `\d`, `\w` or `\s`, whose meanings differ between those
 * engines) and use no lookbehind, `\p{…}` or `[^]`. Lengths count characters (code points), as
 * JSON Schema does, not UTF-16 units.
 */

/** What `String.prototype.trim` removes (ECMAScript WhiteSpace and LineTerminator), for a regex class. */
export const TRIMMED_CHARACTERS = String.raw`\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff`;

/** Matches a string that holds at least one character `trim()` keeps. */
export const NOT_BLANK = `[^${TRIMMED_CHARACTERS}]`;

/** `core` with any whitespace around it: what a trimmed field accepts as sent. */
export function trimmedPattern(core: string): string {
  return `^[${TRIMMED_CHARACTERS}]*(?:${core})[${TRIMMED_CHARACTERS}]*$`;
}

/** The pattern as the validation reads it (code points, like the schema). */
export function compilePattern(pattern: string): RegExp {
  return new RegExp(pattern, 'u');
}

/** Length in characters (code points), as JSON Schema's minLength and maxLength count it. */
export function characterCount(value: string): number {
  let count = 0;
  for (const _ of value) count += 1;
  return count;
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/** A host name with a top-level domain of letters: `example.com`, `mail.example.co.uk`. */
export const DOMAIN_PATTERN = `(?:${LABEL}\\.)+[A-Za-z]{2,63}`;
const PORT = '(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
/** An http(s) URL on a host name: `https://example.com:8443/a.png?size=2#top`. */
export const HTTP_URL_PATTERN = `https?://${DOMAIN_PATTERN}(?::${PORT})?(?:[/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#%-]*)?`;

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Whether a field may be left out: `required` (the default), `optional` (may be absent, never
 * null) or `nullable` (absent and null both mean "not given").
 */
export type Presence = 'required' | 'optional' | 'nullable';

/** Schema metadata a caller may add: descriptions, examples. */
export interface FieldDocs {
  description?: string;
  example?: unknown;
  default?: unknown;
  deprecated?: boolean;
}

/** The documentation keys that are set, for the schema. */
function docsOf(options: FieldDocs): FieldDocs {
  const { description, example, default: fallback, deprecated } = options;
  return {
    ...(description !== undefined ? { description } : {}),
    ...(example !== undefined ? { example } : {}),
    ...(fallback !== undefined ? { default: fallback } : {}),
    ...(deprecated !== undefined ? { deprecated } : {}),
  };
}

/** The Swagger property and the presence rule of a field. */
function property(presence: Presence, schema: ApiPropertyOptions): PropertyDecorator {
  switch (presence) {
    case 'required':
      return ApiProperty(schema);
    case 'optional':
      return applyDecorators(
        ApiPropertyOptional(schema),
        ValidateIf((_object: object, value: unknown) => value !== undefined),
      );
    case 'nullable':
      return applyDecorators(ApiPropertyOptional({ ...schema, nullable: true }), IsOptional());
  }
}

/** One validation rule with its `code` and a message completing "<field> …". */
export function Rule(code: string, test: (value: unknown) => boolean, must: string | ((value: unknown) => string)): PropertyDecorator {
  return ValidateBy({
    name: code,
    validator: {
      validate: (value: unknown) => test(value),
      defaultMessage: (args?: ValidationArguments) =>
        `${args?.property ?? 'value'} ${typeof must === 'function' ? must(args?.value) : must}`,
    },
  });
}

export interface TextOptions extends FieldDocs {
  presence?: Presence;
  /** Fewest characters; default 1 (0 allows the empty string). Trimmed fields always need one non-blank character. */
  minLength?: number;
  /** Most characters, counted on the value as sent. */
  maxLength?: number;
  /**
   * The value must match this pattern, readable by every engine (see above): searched as it is
   * (anchor it with `^…$` to match the whole value). For a trimmed field, give the trimmed value's
   * pattern without anchors: the schema wraps it as `^<whitespace>*(?:pattern)<whitespace>*$`.
   */
  pattern?: string;
  /** Message when the pattern does not match, completing "<field> …", e.g. "must be a valid email address". */
  must?: string;
  /**
   * Leading and trailing whitespace is removed before the value is checked and used, provided
   * the value as sent is within maxLength (a longer one is refused as it is). So the schema
   * describes the value as sent, and the validation agrees with it.
   */
  trim?: boolean;
}

function lengthMessage(min: number, max: number | undefined): string {
  if (max === undefined) return `must be at least ${min} character${min === 1 ? '' : 's'} long`;
  if (min === 0) return `must be at most ${max} characters long`;
  return `must be ${min}-${max} characters long`;
}

/** A string field: type, lengths, pattern and trimming, in the schema and in the validation alike. */
export function Text(options: TextOptions = {}): PropertyDecorator {
  const { presence = 'required', maxLength, trim = false, must } = options;
  const minLength = trim ? 1 : (options.minLength ?? 1);
  const pattern = options.pattern !== undefined ? (trim ? trimmedPattern(options.pattern) : options.pattern) : trim ? NOT_BLANK : undefined;
  const compiled = pattern === undefined ? undefined : compilePattern(pattern);
  const decorators: PropertyDecorator[] = [
    property(presence, {
      type: String,
      ...(minLength > 0 ? { minLength } : {}),
      ...(maxLength !== undefined ? { maxLength } : {}),
      ...(pattern !== undefined ? { pattern } : {}),
      ...docsOf(options),
    }),
    Rule('isString', (value) => typeof value === 'string', 'must be a string'),
    Rule(
      'isLength',
      (value) =>
        typeof value !== 'string' ||
        (characterCount(value) >= minLength && (maxLength === undefined || characterCount(value) <= maxLength)),
      (value) => (trim && typeof value === 'string' && value.trim() === '' ? 'must not be blank' : lengthMessage(minLength, maxLength)),
    ),
  ];
  if (compiled) {
    decorators.push(
      Rule(
        'matches',
        (value) => typeof value !== 'string' || compiled.test(value),
        must ?? (options.pattern === undefined ? 'must not be blank' : 'has an invalid format'),
      ),
    );
  }
  if (trim) {
    decorators.unshift(
      Transform(({ value }: { value: unknown }) =>
        typeof value === 'string' && (maxLength === undefined || characterCount(value) <= maxLength) ? value.trim() : value,
      ),
    );
  }
  return applyDecorators(...decorators);
}

export interface IntegerOptions extends FieldDocs {
  presence?: Presence;
  minimum: number;
  maximum: number;
  /** A query parameter: its decimal digits are read as the number. */
  query?: boolean;
}

const decimalToNumber = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;

/** An integer within [minimum, maximum]. */
export function Integer(options: IntegerOptions): PropertyDecorator {
  const { presence = 'required', minimum, maximum, query = false } = options;
  return applyDecorators(
    ...(query ? [Transform(decimalToNumber)] : []),
    property(presence, {
      type: 'integer',
      minimum,
      maximum,
      ...docsOf(options),
    }),
    Rule(
      'isInt',
      (value) => typeof value === 'number' && Number.isInteger(value) && value >= minimum && value <= maximum,
      `must be an integer from ${minimum} to ${maximum}`,
    ),
  );
}

export interface ChoiceOptions<T extends string> extends FieldDocs {
  presence?: Presence;
  values: readonly T[];
}

/** One of a fixed list of strings. */
export function OneOf<T extends string>(options: ChoiceOptions<T>): PropertyDecorator {
  const { presence = 'required', values } = options;
  return applyDecorators(
    property(presence, { type: String, enum: [...values], ...docsOf(options) }),
    Rule('isIn', (value) => (values as readonly unknown[]).includes(value), `must be one of ${values.join(', ')}`),
  );
}

/** true or false; a query parameter also takes the words `true` and `false`. */
export function Flag(options: FieldDocs & { presence?: Presence; query?: boolean } = {}): PropertyDecorator {
  const { presence = 'required', query = false } = options;
  return applyDecorators(
    ...(query ? [Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value))] : []),
    property(presence, { type: Boolean, ...docsOf(options) }),
    Rule('isBoolean', (value) => typeof value === 'boolean', 'must be true or false'),
  );
}

export interface NestedOptions extends FieldDocs {
  presence?: Presence;
  /**
   * The object's own keys: any other key is dropped unread (older clients send more) instead of
   * refused as unknown. The class should then say `additionalProperties: true` (SchemaExtras).
   */
  ignoreUnknownKeys?: readonly string[];
  /** Completes "<field> …" when the value is not an object. */
  must?: string;
}

/** A nested object validated by its own class. */
export function Nested(type: new () => object, options: NestedOptions = {}): PropertyDecorator {
  const { presence = 'required', ignoreUnknownKeys, must = 'must be an object' } = options;
  const keep = ignoreUnknownKeys ? new Set(ignoreUnknownKeys) : undefined;
  return applyDecorators(
    property(presence, { type, ...docsOf(options) }),
    Rule('isObject', isPlainObject, must),
    ValidateNested(),
    Type(() => type),
    ...(keep
      ? [
          // Runs after class-transformer has built the instance, before validation sees it.
          Transform(({ value }: { value: unknown }) => {
            if (!isPlainObject(value)) return value;
            for (const key of Object.keys(value)) if (!keep.has(key)) delete value[key];
            return value;
          }),
        ]
      : []),
  );
}

/**
 * Schema keywords for a whole class: `additionalProperties`, or an `anyOf` of required fields
 * that no property decorator can say. @nestjs/swagger spreads the options of @ApiSchema into the
 * class's schema (src/common/dto/openapi-contract.spec.ts checks that it still does).
 */
export function SchemaExtras(extras: Pick<SchemaObject, 'additionalProperties' | 'anyOf' | 'description'>): ClassDecorator {
  const options: ApiSchemaOptions = extras;
  return ApiSchema(options);
}
