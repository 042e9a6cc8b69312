import { Body, Controller, Patch, Post, Put, Query, type ArgumentMetadata, type Type } from '@nestjs/common';
import type { OpenAPIObject } from '@nestjs/swagger';
import { Test } from '@nestjs/testing';
import { createOpenApiDocument } from '../../app.setup.js';
import {
  ChangePasswordDto,
  ForgotPasswordDto,
  GoogleSignInDto,
  LoginDto,
  RefreshDto,
  RegisterDto,
  ResetPasswordDto,
  VerifyEmailDto,
} from '../../auth/dto/auth.dto.js';
import { CreateEnvironmentDto, LogsQueryDto, UpdateEnvironmentDto } from '../../environments/dto/environment.dto.js';
import { TemplateDefinitionDto, UpdateTemplateDto } from '../../templates/dto/template-definition.dto.js';
import { TemplateListQueryDto } from '../../templates/dto/template-query.dto.js';
import { AdminUpdateUserDto, UpdateProfileDto, UserSearchQueryDto } from '../../users/dto/user.dto.js';
import { createValidationPipe } from '../errors/validation.js';
import { characterCount, isPlainObject, TRIMMED_CHARACTERS } from './fields.js';

/**
 * The OpenAPI description and the validation agree on boundary values, DTO by DTO: each case is
 * judged by the generated schema and by the global ValidationPipe, and both must give the expected
 * verdict. (The schema-driven fuzzer, test/foundation/openapi-fuzz.e2e-spec.ts, checks the same
 * against the running server with generated values.)
 */

/** A controller that only exists to put every request DTO into one generated document. */
@Controller('contract')
class ContractController {
  @Post('register') register(@Body() _body: RegisterDto): void {}
  @Post('login') login(@Body() _body: LoginDto): void {}
  @Post('google') google(@Body() _body: GoogleSignInDto): void {}
  @Post('refresh') refresh(@Body() _body: RefreshDto): void {}
  @Post('change-password') changePassword(@Body() _body: ChangePasswordDto): void {}
  @Post('forgot-password') forgotPassword(@Body() _body: ForgotPasswordDto): void {}
  @Post('reset-password') resetPassword(@Body() _body: ResetPasswordDto): void {}
  @Post('verify-email') verifyEmail(@Body() _body: VerifyEmailDto): void {}
  @Put('profile') profile(@Body() _body: UpdateProfileDto): void {}
  @Patch('user') adminUpdate(@Body() _body: AdminUpdateUserDto): void {}
  @Post('environment') createEnvironment(@Body() _body: CreateEnvironmentDto): void {}
  @Put('environment') updateEnvironment(@Body() _body: UpdateEnvironmentDto): void {}
  @Post('template') createTemplate(@Body() _body: TemplateDefinitionDto): void {}
  @Put('template') updateTemplate(@Body() _body: UpdateTemplateDto): void {}
  @Post('logs') logs(@Query() _query: LogsQueryDto): void {}
  @Post('users') users(@Query() _query: UserSearchQueryDto): void {}
  @Post('templates') templates(@Query() _query: TemplateListQueryDto): void {}
}

type Schema = Record<string, unknown>;

/** JSON Schema (the subset @nestjs/swagger writes, with OpenAPI 3.0's `nullable`) as the fuzzer reads it. */
function accepts(document: OpenAPIObject, schema: Schema, value: unknown): boolean {
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/components/schemas/', '');
    return accepts(document, document.components?.schemas?.[name] as Schema, value);
  }
  const all = (key: string): Schema[] => (Array.isArray(schema[key]) ? (schema[key] as Schema[]) : []);
  if (value === null && schema.nullable === true) return true;
  const type = schema.type as string | undefined;
  if (type !== undefined) {
    const matches =
      (type === 'string' && typeof value === 'string') ||
      (type === 'integer' && Number.isInteger(value)) ||
      (type === 'number' && typeof value === 'number') ||
      (type === 'boolean' && typeof value === 'boolean') ||
      (type === 'object' && isPlainObject(value)) ||
      (type === 'array' && Array.isArray(value));
    if (!matches) return false;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => option === value)) return false;
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && characterCount(value) < schema.minLength) return false;
    if (typeof schema.maxLength === 'number' && characterCount(value) > schema.maxLength) return false;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return false;
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) return false;
    if (typeof schema.maximum === 'number' && value > schema.maximum) return false;
  }
  if (isPlainObject(value)) {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const patterns = Object.entries((schema.patternProperties ?? {}) as Record<string, Schema>);
    if (Array.isArray(schema.required) && !schema.required.every((key: string) => key in value)) return false;
    if (typeof schema.maxProperties === 'number' && Object.keys(value).length > schema.maxProperties) return false;
    for (const [key, item] of Object.entries(value)) {
      const matching = patterns.filter(([pattern]) => new RegExp(pattern, 'u').test(key));
      if (properties[key] && !accepts(document, properties[key], item)) return false;
      if (!matching.every(([, itemSchema]) => accepts(document, itemSchema, item))) return false;
      if (properties[key] || matching.length > 0) continue;
      if (schema.additionalProperties === false) return false;
      if (isPlainObject(schema.additionalProperties) && !accepts(document, schema.additionalProperties, item)) return false;
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) return false;
    if (schema.uniqueItems === true && new Set(value.map((item) => JSON.stringify(item))).size !== value.length) return false;
    if (isPlainObject(schema.items) && !value.every((item) => accepts(document, schema.items as Schema, item))) return false;
  }
  if (!all('allOf').every((part) => accepts(document, part, value))) return false;
  if (all('anyOf').length > 0 && !all('anyOf').some((part) => accepts(document, part, value))) return false;
  if (all('oneOf').length > 0 && all('oneOf').filter((part) => accepts(document, part, value)).length !== 1) return false;
  return true;
}

const pipe = createValidationPipe();

async function validates(metatype: Type<unknown>, type: ArgumentMetadata['type'], value: unknown): Promise<boolean> {
  try {
    await pipe.transform(structuredClone(value), { type, metatype });
    return true;
  } catch {
    return false;
  }
}

let document: OpenAPIObject;

beforeAll(async () => {
  const moduleRef = await Test.createTestingModule({ controllers: [ContractController] }).compile();
  const app = moduleRef.createNestApplication();
  document = createOpenApiDocument(app);
  await app.close();
});

function bodySchema(path: string, method: 'post' | 'put' | 'patch'): Schema {
  const body = document.paths[`/contract/${path}`]?.[method]?.requestBody as { content: Record<string, { schema: Schema }> };
  return body.content['application/json']?.schema ?? {};
}

/** [label, body, expected verdict] */
type Case = [string, unknown, boolean];

function agree(path: string, method: 'post' | 'put' | 'patch', metatype: Type<unknown>, cases: Case[]): void {
  it.each(cases)(`${metatype.name}: %s`, async (_label, body, expected) => {
    expect({ schema: accepts(document, bodySchema(path, method), body), validation: await validates(metatype, 'body', body) }).toEqual({
      schema: expected,
      validation: expected,
    });
  });
}

/** A query parameter as the fuzzer sends it (a string) and as its schema types it. */
function agreeOnQuery(path: string, metatype: Type<unknown>, cases: [string, Record<string, string>, boolean][]): void {
  it.each(cases)(`${metatype.name}: %s`, async (_label, query, expected) => {
    const parameters = (document.paths[`/contract/${path}`]?.post?.parameters ?? []) as unknown as { name: string; schema: Schema }[];
    const schemaVerdict = Object.entries(query).every(([name, raw]) => {
      const parameter = parameters.find((p) => p.name === name);
      if (!parameter) return false;
      const typed =
        parameter.schema.type === 'integer' && /^-?[0-9]+$/.test(raw)
          ? Number(raw)
          : parameter.schema.type === 'boolean' && (raw === 'true' || raw === 'false')
            ? raw === 'true'
            : raw;
      return accepts(document, parameter.schema, typed);
    });
    expect({ schema: schemaVerdict, validation: await validates(metatype, 'query', query) }).toEqual({
      schema: expected,
      validation: expected,
    });
  });
}

const NBSP = '\u00a0';

describe('the whitespace that trimmed fields drop', () => {
  it('is exactly what String.prototype.trim removes', () => {
    const blank = new RegExp(`^[${TRIMMED_CHARACTERS}]$`, 'u');
    const differences: string[] = [];
    for (let code = 0; code <= 0xffff; code += 1) {
      if (code >= 0xd800 && code <= 0xdfff) continue;
      const character = String.fromCharCode(code);
      if (blank.test(character) !== (character.trim() === '')) differences.push(code.toString(16));
    }
    expect(differences).toEqual([]);
  });
});

describe('schema and validation agree', () => {
  const account = { username: 'ada_lovelace', email: 'ada@example.com', password: 'Analytical1' };
  const longEmail = (length: number): string => `${'a'.repeat(length - '@example.com'.length)}@example.com`;

  agree('register', 'post', RegisterDto, [
    ['a valid account', account, true],
    ['a username with spaces around it (trimmed)', { ...account, username: ' ada_l ' }, true],
    ['a 2-character username', { ...account, username: 'ab' }, false],
    ['a 30-character username', { ...account, username: 'a'.repeat(30) }, true],
    ['a 31-character username', { ...account, username: 'a'.repeat(31) }, false],
    ['an empty email', { ...account, email: '' }, false],
    ['an email with spaces around it', { ...account, email: ` ada@example.com${NBSP}` }, true],
    ['an email without a domain name', { ...account, email: 'ada@example' }, false],
    ['a 254-character email', { ...account, email: longEmail(254) }, true],
    ['a 255-character email', { ...account, email: longEmail(255) }, false],
    ['a 254-character email with a space after it', { ...account, email: `${longEmail(254)} ` }, false],
    ['an 8-character password', { ...account, password: 'Abcdefg1' }, true],
    ['a 7-character password', { ...account, password: 'Abcdef1' }, false],
    ['a password without an upper-case letter', { ...account, password: 'abcdefg1' }, false],
    ['a password with the digit first', { ...account, password: '1bcdefgA' }, true],
    ['a 128-character password', { ...account, password: `A${'b'.repeat(126)}1` }, true],
    ['a 129-character password', { ...account, password: `A${'b'.repeat(127)}1` }, false],
    ['8 characters of which one is an emoji (9 UTF-16 units)', { ...account, password: 'Abcdef1😀' }, true],
    ['full_name null', { ...account, full_name: null }, true],
    ['an empty full_name', { ...account, full_name: '' }, false],
    ['a blank full_name', { ...account, full_name: '   ' }, false],
    ['a 100-character full_name', { ...account, full_name: 'x'.repeat(100) }, true],
    ['a 101-character full_name', { ...account, full_name: 'x'.repeat(101) }, false],
    ['an unknown field', { ...account, admin: true }, false],
  ]);

  agree('login', 'post', LoginDto, [
    ['one character each', { username_or_email: 'a', password: 'x' }, true],
    ['an empty username_or_email', { username_or_email: '', password: 'x' }, false],
    ['a blank username_or_email', { username_or_email: ' ', password: 'x' }, false],
    ['a 254-character username_or_email', { username_or_email: 'a'.repeat(254), password: 'x' }, true],
    ['a 255-character username_or_email', { username_or_email: 'a'.repeat(255), password: 'x' }, false],
    ['an empty password', { username_or_email: 'ada', password: '' }, false],
    ['a 1024-character password', { username_or_email: 'ada', password: 'x'.repeat(1024) }, true],
    ['a 1025-character password', { username_or_email: 'ada', password: 'x'.repeat(1025) }, false],
  ]);

  agree('google', 'post', GoogleSignInDto, [
    ['an id_token and a null access_token', { id_token: 'x', access_token: null }, true],
    ['an empty access_token', { id_token: 'x', access_token: '' }, true],
    ['an empty id_token', { id_token: '' }, false],
    ['an 8193-character access_token', { id_token: 'x', access_token: 'x'.repeat(8193) }, false],
  ]);

  agree('refresh', 'post', RefreshDto, [
    ['a token', { refresh_token: 'x' }, true],
    ['an empty token', { refresh_token: '' }, false],
    ['a 4097-character token', { refresh_token: 'x'.repeat(4097) }, false],
  ]);

  agree('change-password', 'post', ChangePasswordDto, [
    ['valid', { current_password: 'x', new_password: 'Analytical1' }, true],
    ['an empty current password', { current_password: '', new_password: 'Analytical1' }, false],
    ['a weak new password', { current_password: 'x', new_password: 'analytical' }, false],
  ]);

  agree('forgot-password', 'post', ForgotPasswordDto, [
    ['an address', { email: 'ada@example.com' }, true],
    ['an empty address', { email: '' }, false],
  ]);

  agree('reset-password', 'post', ResetPasswordDto, [
    ['a token with spaces around it', { token: ' t ', new_password: 'Analytical1' }, true],
    ['an empty token', { token: '', new_password: 'Analytical1' }, false],
    ['a 512-character token', { token: 't'.repeat(512), new_password: 'Analytical1' }, true],
    ['a 513-character token', { token: 't'.repeat(513), new_password: 'Analytical1' }, false],
  ]);

  agree('verify-email', 'post', VerifyEmailDto, [
    ['six digits', { token: '123456' }, true],
    ['six digits with spaces around them', { token: ' 123456\n' }, true],
    ['five digits', { token: '12345' }, false],
    ['six Arabic-Indic digits', { token: '١٢٣٤٥٦' }, false],
    ['an empty code', { token: '' }, false],
  ]);

  agree('profile', 'put', UpdateProfileDto, [
    ['nothing', {}, true],
    ['every field cleared', { full_name: null, preferred_region: null, avatar_url: null }, true],
    ['a region', { preferred_region: 'eu-west' }, true],
    ['a region in capitals', { preferred_region: 'EU' }, false],
    ['an https avatar', { avatar_url: 'https://example.com/ada.png?size=2' }, true],
    ['a javascript: avatar', { avatar_url: 'javascript:alert(1)' }, false],
    ['an ftp avatar', { avatar_url: 'ftp://example.com/ada.png' }, false],
  ]);

  agree('user', 'patch', AdminUpdateUserDto, [
    ['nothing', {}, true],
    ['a role', { role: 'admin', subscription_plan: 'pro', is_active: false }, true],
    ['a null role', { role: null }, false],
    ['an unknown role', { role: 'root' }, false],
    ['is_active as a string', { is_active: 'true' }, false],
  ]);

  const environment = { name: 'My Awesome Project', template: 'python' };
  agree('environment', 'post', CreateEnvironmentDto, [
    ['the current client', { ...environment, resources: null, environment_variables: null }, true],
    ['an older client', { name: 'Old', template_id: 'debian', resource_limits: { cpu: '500m', memory: '512Mi', storage: null } }, true],
    ['resources with a key of an older client', { ...environment, resources: { cpu: '1', memory: '1Gi', max_instances: 3 } }, true],
    ['resource_limits with unknown keys of any type', { ...environment, resource_limits: { storage: '5Gi', extra: { a: [1] } } }, true],
    ['a whole number of cores', { ...environment, resources: { cpu: 2 } }, true],
    ['a fraction of a core as a number', { ...environment, resources: { cpu: 0.5 } }, true],
    ['less than a millicore as a number', { ...environment, resources: { cpu: 0.0004 } }, false],
    ['a quantity with spaces around it', { ...environment, resources: { memory: ' 1Gi ' } }, true],
    ['a memory quantity without a unit', { ...environment, resources: { memory: '1024' } }, false],
    ['zero CPU', { ...environment, resources: { cpu: '0m' } }, false],
    ['zero cores as a number', { ...environment, resources: { cpu: 0 } }, false],
    ['zero memory', { ...environment, resources: { memory: '0Gi' } }, false],
    ['one millicore', { ...environment, resources: { cpu: '0.001' } }, true],
    ['resources as a list', { ...environment, resources: [] }, false],
    ['an empty name', { ...environment, name: '' }, false],
    ['a blank name', { ...environment, name: ' \t' }, false],
    ['a 64-character name', { ...environment, name: 'x'.repeat(64) }, true],
    ['a 65-character name', { ...environment, name: 'x'.repeat(65) }, false],
    ['64 emoji (128 UTF-16 units)', { ...environment, name: '😀'.repeat(64) }, true],
    ['an emoji sequence joined by ZWJ', { ...environment, name: '👩‍💻 dev' }, true],
    ['a control character', { ...environment, name: 'bad\u0007name' }, false],
    ['a bidirectional override', { ...environment, name: '\u202eabc' }, false],
    ['an empty template', { ...environment, template: '' }, false],
    ['a variable', { ...environment, environment_variables: { DEBUG: '1', _X9: '' } }, true],
    ['a reserved variable', { ...environment, environment_variables: { HOME: '/tmp' } }, false],
    ['a DEVPOCKET_ variable', { ...environment, environment_variables: { DEVPOCKET_X: '1' } }, false],
    ['a variable name starting with a digit', { ...environment, environment_variables: { '1A': 'x' } }, false],
    ['a 4096-character value', { ...environment, environment_variables: { A: 'é'.repeat(4096) } }, true],
    ['a 4097-character value', { ...environment, environment_variables: { A: 'x'.repeat(4097) } }, false],
    ['a NUL in a value', { ...environment, environment_variables: { A: 'a\u0000b' } }, false],
    ['a number as a value', { ...environment, environment_variables: { A: 1 } }, false],
    [
      '65 variables',
      { ...environment, environment_variables: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x'])) },
      false,
    ],
    ['an unknown top-level field', { ...environment, max_instances: 3 }, false],
  ]);

  it('CreateEnvironmentDto: the schema requires template or template_id (EnvironmentsService refuses neither with 422)', () => {
    const schema = bodySchema('environment', 'post');
    expect(accepts(document, schema, { name: 'x' })).toBe(false);
    expect(accepts(document, schema, { name: 'x', template: null, template_id: null })).toBe(false);
    expect(accepts(document, schema, { name: 'x', template: null, template_id: 'debian' })).toBe(true);
  });

  agree('environment', 'put', UpdateEnvironmentDto, [
    ['nothing', {}, true],
    ['null everywhere', { name: null, resources: null, resource_limits: null, environment_variables: null }, true],
    ['resource_limits with a key of an older client', { resource_limits: { cpu: '500m', max_instances: 3 } }, true],
    ['an unknown top-level field', { max_instances: 3 }, false],
  ]);

  const template = {
    name: 'sample',
    display_name: 'Sample',
    description: 'A sample template',
    category: 'programming_language',
    tags: ['sample', 'c++'],
    status: 'active',
    version: '1.2.3',
    default_port: 8000,
    documentation_url: 'https://example.com/docs',
    icon_url: null,
    image: 'python:3.12-bookworm',
    user: { name: 'devpocket', uid: 1000, gid: 1000, home: '/home/devpocket' },
    shell: '/bin/bash',
    working_directory: 'workspace',
    ports: [{ name: 'http', port: 8000, protocol: 'TCP' }],
    environment_variables: { LANG: 'C.UTF-8' },
    startup: { system: ['apt-get install -y tmux'], user: ['mkdir -p "$HOME/workspace"'] },
    required_commands: ['bash', 'python3.12', '.x'],
    default_resources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
    run_as_non_root: false,
  };
  agree('template', 'post', TemplateDefinitionDto, [
    ['a valid definition', template, true],
    ['a whole number of cores', { ...template, default_resources: { ...template.default_resources, cpu: 1 } }, true],
    ['a fraction of a core as a number', { ...template, default_resources: { ...template.default_resources, cpu: 0.5 } }, true],
    ['one millicore as a decimal', { ...template, default_resources: { ...template.default_resources, cpu: '0.001' } }, true],
    ['zero cores', { ...template, default_resources: { ...template.default_resources, cpu: '0.000' } }, false],
    ['memory with four decimals', { ...template, default_resources: { ...template.default_resources, memory: '0.0001Gi' } }, false],
    ['a blank display_name', { ...template, display_name: ' ' }, false],
    ['a 100-emoji display_name', { ...template, display_name: '😀'.repeat(100) }, true],
    ['a description over lines', { ...template, description: 'line one\nline two' }, true],
    ['a repeated tag', { ...template, tags: ['a', 'a'] }, false],
    ['a pre-release version', { ...template, version: '1.0.0-beta.1+build.5' }, true],
    ['a version with a leading zero', { ...template, version: '01.0.0' }, false],
    ['a home with ..', { ...template, user: { ...template.user, home: '/home/../etc' } }, false],
    ['a home with a trailing slash', { ...template, user: { ...template.user, home: '/home/' } }, false],
    ['the home directory itself', { ...template, working_directory: '' }, true],
    ['a command of dots', { ...template, required_commands: ['..'] }, false],
    ['a NUL in a variable', { ...template, environment_variables: { A: '\u0000' } }, false],
    ['an icon that is not http', { ...template, icon_url: 'ftp://example.com/icon.png' }, false],
    ['a uid above the limit', { ...template, user: { ...template.user, uid: 2 ** 31 } }, false],
    ['an unknown nested field', { ...template, user: { ...template.user, shell: '/bin/sh' } }, false],
  ]);

  agree('template', 'put', UpdateTemplateDto, [
    ['one field', { display_name: 'Renamed' }, true],
    ['nothing', {}, true],
    ['an unknown field', { startup_commands: ['ls'] }, false],
  ]);

  agreeOnQuery('logs', LogsQueryDto, [
    ['nothing', {}, true],
    ['lines=1', { lines: '1' }, true],
    ['lines=5000', { lines: '5000' }, true],
    ['lines=0', { lines: '0' }, false],
    ['lines=5001', { lines: '5001' }, false],
    ['an empty lines', { lines: '' }, false],
    ['a date', { since: '2026-11-27' }, true],
    ['a time with an offset and a fraction', { since: '2026-11-27T10:00:00.123456+05:30' }, true],
    ['a time without seconds or offset', { since: '2024-02-29T10:00' }, true],
    ['29 February of a common year', { since: '2023-02-29' }, false],
    ['30 February', { since: '2026-02-30T00:00:00Z' }, false],
    ['a word', { since: 'yesterday' }, false],
    ['an unknown parameter', { tail: '1' }, false],
  ]);

  agreeOnQuery('users', UserSearchQueryDto, [
    ['a page', { page: '100000', page_size: '100', query: 'ada' }, true],
    ['page 0', { page: '0' }, false],
    ['101 per page', { page_size: '101' }, false],
    ['a blank query', { query: ' ' }, false],
  ]);

  agreeOnQuery('templates', TemplateListQueryDto, [
    ['a category', { category: 'database', include_deleted: 'false' }, true],
    ['an empty category (every category)', { category: '' }, true],
    ['an unknown status', { status: 'retired' }, false],
    ['include_deleted=1', { include_deleted: '1' }, false],
  ]);
});

describe('every request schema', () => {
  it('refuses unknown properties, except the resource objects, which ignore them', () => {
    const responses = ['ErrorBodyDto', 'FieldErrorDto'];
    const open = Object.entries(document.components?.schemas ?? {})
      .filter(([name, schema]) => !responses.includes(name) && 'properties' in schema && (schema as Schema).additionalProperties !== false)
      .map(([name]) => name);
    expect(open).toEqual(['ResourcesDto']);
  });
});
