import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiPropertyOptions } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsOptional, ValidateBy, ValidateNested, ValidationArguments } from 'class-validator';
import { characterCount, compilePattern, HTTP_URL_PATTERN, isPlainObject, TRIMMED_CHARACTERS } from '../../common/dto/fields.js';
import { ENV_NAME_PATTERN, LIMITS } from '../template-rules.js';

/*
 * The rules of template fields, each with its OpenAPI schema, shared by the definition DTOs
 * (template-definition.dto.ts): patterns are written for every engine (see src/common/dto/fields.ts).
 */

export interface RuleOptions {
  /** The `code` of the field error. */
  code: string;
  test: (value: unknown) => boolean;
  /** Completes "<field> must …" (or any sentence after the field name); may name the offending part. */
  must: string | ((value: unknown) => string);
}

/** One rule, one message: "<field> is required" when missing, otherwise "<field> <must>". */
export function Rule(options: RuleOptions): PropertyDecorator {
  return ValidateBy({
    name: options.code,
    validator: {
      validate: (value: unknown) => options.test(value),
      defaultMessage: (args?: ValidationArguments) => {
        const property = args?.property ?? 'value';
        if (args?.value === undefined || args.value === null) return `${property} is required`;
        return `${property} ${typeof options.must === 'function' ? options.must(args.value) : options.must}`;
      },
    },
  });
}

/** Swagger metadata and the validation rule of one field, together. */
export function Field(api: ApiPropertyOptions, rule: RuleOptions, optional = false): PropertyDecorator {
  return optional ? applyDecorators(ApiPropertyOptional(api), IsOptional(), Rule(rule)) : applyDecorators(ApiProperty(api), Rule(rule));
}

/** A nested mapping validated by its own class. */
export function NestedObject(type: new () => object, api: ApiPropertyOptions, must: string): PropertyDecorator {
  return applyDecorators(
    ApiProperty({ ...api, type } as ApiPropertyOptions),
    Rule({ code: 'isObject', test: isPlainObject, must }),
    ValidateNested(),
    Type(() => type),
  );
}

export const quote = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** A string matching `pattern` (compiled as the schema reads it), of at most `maxLength` characters. */
export function matching(pattern: string, maxLength?: number): (value: unknown) => boolean {
  const compiled = compilePattern(pattern);
  return (value) => typeof value === 'string' && (maxLength === undefined || characterCount(value) <= maxLength) && compiled.test(value);
}

/** A list of strings each passing `item`, distinct, at most `max`; the message names the first bad entry. */
export function stringList(options: {
  code: string;
  max: number;
  item: (value: unknown) => boolean;
  describe: string;
  distinct: boolean;
}): RuleOptions {
  const problem = (value: unknown): string | null => {
    if (!Array.isArray(value)) return 'is not a list';
    const list = value as unknown[];
    if (list.length > options.max) return `has ${list.length} entries`;
    const bad = list.find((entry) => !options.item(entry));
    if (bad !== undefined) return `has ${quote(bad)}`;
    if (options.distinct) {
      const duplicate = list.find((entry, index) => list.indexOf(entry) !== index);
      if (duplicate !== undefined) return `repeats ${quote(duplicate)}`;
    }
    return null;
  };
  return {
    code: options.code,
    test: (value) => problem(value) === null,
    must: (value) =>
      `must be a list of at most ${options.max} ${options.describe}${options.distinct ? ', each once' : ''} (it ${problem(value) ?? 'is invalid'})`,
  };
}

/** The schema of a list of strings, each as `item` describes it. */
export const listSchema = (max: number, item: ApiPropertyOptions, distinct: boolean): ApiPropertyOptions =>
  ({ type: 'array', maxItems: max, items: { type: 'string', ...item }, ...(distinct ? { uniqueItems: true } : {}) }) as ApiPropertyOptions;

/** A path segment of A-Z a-z 0-9 . _ + -, other than `.` and `..`. */
export const SEGMENT = String.raw`(?:[A-Za-z0-9_+-][A-Za-z0-9._+-]*|\.[A-Za-z0-9_+-][A-Za-z0-9._+-]*|\.\.[A-Za-z0-9._+-]+)`;
/** `/home/dev`: what isAbsolutePath accepts. */
export const ABSOLUTE_PATH_PATTERN = `^(?:/${SEGMENT})+$`;
/** `projects/app` or '': what isRelativePath accepts. */
export const RELATIVE_PATH_PATTERN = `^(?:${SEGMENT}(?:/${SEGMENT})*)?$`;
/** A command name of 1-64 characters of A-Z a-z 0-9 . _ + -, not only dots: what isCommandName accepts. */
export const COMMAND_PATTERN = String.raw`^(?:[A-Za-z0-9_+-][A-Za-z0-9._+-]*|\.+[A-Za-z0-9_+-][A-Za-z0-9._+-]*)$`;

/** A line of text: no control characters, not blank. */
export const SINGLE_LINE_EXCLUDED = String.raw`\u0000-\u001f\u007f`;
export const SINGLE_LINE_PATTERN = `^[^${SINGLE_LINE_EXCLUDED}]*[^${SINGLE_LINE_EXCLUDED}${TRIMMED_CHARACTERS}][^${SINGLE_LINE_EXCLUDED}]*$`;
/** Text that may span lines: no control characters but tab and newline, not blank. */
export const TEXT_EXCLUDED = String.raw`\u0000-\u0008\u000b-\u001f\u007f`;
export const TEXT_PATTERN = `^[^${TEXT_EXCLUDED}]*[^${TEXT_EXCLUDED}${TRIMMED_CHARACTERS}][^${TEXT_EXCLUDED}]*$`;

/** Semantic Versioning 2.0.0, numbers of at most 15 digits (always safe integers), as semver.ts reads it. */
export const VERSION_NUMBER = '(?:0|[1-9][0-9]{0,14})';
export const PRERELEASE_ID = '(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)';
export const BUILD_ID = '[0-9a-zA-Z-]+';
export const VERSION_PATTERN = String.raw`^${VERSION_NUMBER}\.${VERSION_NUMBER}\.${VERSION_NUMBER}(?:-${PRERELEASE_ID}(?:\.${PRERELEASE_ID})*)?(?:\+${BUILD_ID}(?:\.${BUILD_ID})*)?$`;
export const VERSION_MAX_LENGTH = 64;

/** A positive number of at most three decimals (so never rounded to zero): `1`, `0.5`, `0.001`. */
export const POSITIVE_DECIMAL = String.raw`(?:[0-9]*[1-9][0-9]*(?:\.[0-9]{1,3})?|[0-9]+\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))`;
/** A Kubernetes CPU quantity above zero: `500m`, `1`, `0.25` (unanchored; environments' resources use it too). */
export const CPU_QUANTITY = `(?:[0-9]*[1-9][0-9]*m|${POSITIVE_DECIMAL})`;
/** A Kubernetes memory or storage quantity above zero, with a unit: `512Mi`, `1Gi`, `1.5G` (unanchored). */
export const BYTE_QUANTITY = `${POSITIVE_DECIMAL}(?:Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)`;
export const CPU_QUANTITY_PATTERN = `^${CPU_QUANTITY}$`;
export const BYTE_QUANTITY_PATTERN = `^${BYTE_QUANTITY}$`;

export const isPortNumber = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
export const isId = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= LIMITS.maxId;
export const ID_SCHEMA = { type: 'integer', minimum: 0, maximum: LIMITS.maxId } as const;
export const PORT_SCHEMA = { type: 'integer', minimum: 1, maximum: 65535 } as const;
export const URL_SCHEMA = { type: String, maxLength: LIMITS.url, pattern: HTTP_URL_PATTERN, nullable: true } as const;
export const isHttpUrl = matching(`^(?:${HTTP_URL_PATTERN})$`, LIMITS.url);

export const isStep = matching(TEXT_PATTERN, LIMITS.step);
export const STEP_LIST = stringList({
  code: 'steps',
  max: LIMITS.steps,
  item: isStep,
  describe: `non-empty shell steps of at most ${LIMITS.step} characters`,
  distinct: false,
});

export const ENV_VALUE_PATTERN = String.raw`^[^\u0000]*$`;
export const environmentProblem = (value: unknown): string | null => {
  if (!isPlainObject(value)) return 'it is not a mapping';
  const entries = Object.entries(value);
  if (entries.length > LIMITS.environmentVariables) return `it has ${entries.length} variables`;
  for (const [name, text] of entries) {
    if (!ENV_NAME_PATTERN.test(name)) return `${quote(name)} is not a variable name`;
    if (typeof text !== 'string') return `the value of ${name} is not a string (quote numbers and booleans in YAML: "1")`;
    if (characterCount(text) > LIMITS.environmentValue || text.includes('\u0000'))
      return `the value of ${name} is longer than ${LIMITS.environmentValue} characters or holds NUL`;
  }
  return null;
};

/** The definition of a template: the YAML file's content, and the body of `POST /templates`. */
