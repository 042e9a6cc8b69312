import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PLANS } from '../users/plans.js';
import { compareSemver, isSemver } from './semver.js';
import {
  applyTemplateChanges,
  checkTemplateDefinition,
  parseTemplateFile,
  TemplateDefinition,
  templateContentHash,
  TemplateFileError,
} from './template-file.js';
import { cpuMillicores, quantityBytes } from './template-rules.js';
import { startupCommands } from './template.js';

const TEMPLATES_DIR = join(import.meta.dirname, '..', '..', 'templates');

/** A valid definition in the file format; each test changes one thing. */
function valid(): Record<string, unknown> {
  return {
    name: 'sample',
    display_name: 'Sample',
    description: 'A sample template',
    category: 'programming_language',
    tags: ['sample', 'c++', 'node.js'],
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
    environment_variables: { LANG: 'C.UTF-8', _PRIVATE_1: 'x' },
    startup: { system: ['apt-get install -y tmux'], user: ['mkdir -p "$HOME/workspace"'] },
    required_commands: ['bash', 'tmux', 'python3', 'g++', 'python3.12'],
    default_resources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
    run_as_non_root: false,
  };
}

type Patch = (doc: Record<string, unknown>) => void;

/** Parses `doc` as the file `templates/sample.yaml`; returns the error message, or null when accepted. */
function refusal(patch: Patch, file = 'templates/sample.yaml'): string | null {
  const doc = valid();
  patch(doc);
  try {
    parseTemplateFile(stringify(doc), file);
    return null;
  } catch (error) {
    if (!(error instanceof TemplateFileError)) throw error;
    return error.message;
  }
}

const set =
  (path: string, value: unknown): Patch =>
  (doc) => {
    const keys = path.split('.');
    let target = doc;
    for (const key of keys.slice(0, -1)) target = target[key] as Record<string, unknown>;
    target[keys.at(-1)!] = value;
  };

const remove =
  (path: string): Patch =>
  (doc) => {
    const keys = path.split('.');
    let target = doc;
    for (const key of keys.slice(0, -1)) target = target[key] as Record<string, unknown>;
    delete target[keys.at(-1)!];
  };

describe('template files', () => {
  it('accepts a valid file and converts it to the domain shape', () => {
    const definition = parseTemplateFile(stringify(valid()), 'templates/sample.yaml');
    expect(definition).toMatchObject({
      name: 'sample',
      displayName: 'Sample',
      defaultPort: 8000,
      iconUrl: null,
      user: { name: 'devpocket', uid: 1000, gid: 1000, home: '/home/devpocket' },
      workingDirectory: 'workspace',
      ports: [{ name: 'http', port: 8000, protocol: 'TCP' }],
      environmentVariables: { LANG: 'C.UTF-8', _PRIVATE_1: 'x' },
      defaultResources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
      runAsNonRoot: false,
    });
    expect(startupCommands(definition)).toEqual(['apt-get install -y tmux', 'mkdir -p "$HOME/workspace"']);
  });

  it('accepts optional fields left out, and a CPU count written as a YAML number', () => {
    expect(refusal(remove('default_port'))).toBeNull();
    expect(refusal(remove('documentation_url'))).toBeNull();
    expect(refusal(remove('icon_url'))).toBeNull();
    const definition = parseTemplateFile(
      stringify({ ...valid(), default_resources: { cpu: 1, memory: '512Mi', storage: '1G' } }),
      'sample.yaml',
    );
    expect(definition.defaultResources.cpu).toBe('1');
  });

  describe('refuses a bad value, naming the file and the field', () => {
    const cases: [string, Patch, string][] = [
      ['name: not a DNS label', set('name', 'Sample_1'), 'name must be 1-40 characters of a-z, 0-9 and -'],
      ['name: too long', set('name', 'a'.repeat(41)), 'name must be 1-40 characters'],
      ['name: leading dash', set('name', '-sample'), 'name must be 1-40 characters'],
      ['display_name: empty', set('display_name', ' '), 'display_name must be a single line of 1-100 characters'],
      ['display_name: two lines', set('display_name', 'a\nb'), 'display_name must be a single line'],
      ['description: too long', set('description', 'x'.repeat(2001)), 'description must be a text of 1-2000 characters'],
      [
        'category: unknown',
        set('category', 'games'),
        'category must be one of programming_language, framework, database, devops, operating_system',
      ],
      ['tags: not a list', set('tags', 'python'), 'tags must be a list of at most 20 tags'],
      [
        'tags: upper case',
        set('tags', ['Python']),
        'tags must be a list of at most 20 tags of 1-40 characters of a-z, 0-9, ., +, #, _ and -, each once (it has "Python")',
      ],
      ['tags: repeated', set('tags', ['a', 'a']), '(it repeats "a")'],
      [
        'tags: too many',
        set(
          'tags',
          Array.from({ length: 21 }, (_, i) => `t${i}`),
        ),
        '(it has 21 entries)',
      ],
      ['status: unknown', set('status', 'retired'), 'status must be one of active, deprecated, beta'],
      ['version: two parts', set('version', '1.0'), 'version must be a semantic version like 1.2.0'],
      ['version: a YAML number', set('version', 1.5), 'version must be a semantic version like 1.2.0'],
      ['version: leading v', set('version', 'v1.0.0'), 'version must be a semantic version'],
      ['default_port: zero', set('default_port', 0), 'default_port must be an integer from 1 to 65535'],
      ['default_port: a string', set('default_port', '8000'), 'default_port must be an integer from 1 to 65535'],
      ['documentation_url: not http', set('documentation_url', 'ftp://example.com'), 'documentation_url must be an http(s) URL'],
      ['icon_url: javascript', set('icon_url', 'javascript:alert(1)'), 'icon_url must be an http(s) URL'],
      ['image: spaces', set('image', 'python 3'), 'image must be a container image reference like python:3.12-bookworm'],
      ['image: upper case repository', set('image', 'Python:3'), 'image must be a container image reference'],
      ['user: missing', remove('user'), 'user is required'],
      ['user: not a mapping', set('user', 'devpocket'), 'user must be a mapping with name, uid, gid and home'],
      ['user.name: bad', set('user.name', 'Dev Pocket'), 'user.name must be a Unix user name like devpocket'],
      ['user.uid: negative', set('user.uid', -1), 'user.uid must be an integer from 0 to 2147483647'],
      ['user.gid: a string', set('user.gid', '1000'), 'user.gid must be an integer from 0 to 2147483647'],
      ['user.home: relative', set('user.home', 'home/dev'), 'user.home must be an absolute path like /home/devpocket'],
      ['user.home: ..', set('user.home', '/home/../etc'), 'user.home must be an absolute path'],
      ['user: unknown field', set('user.shell', '/bin/sh'), 'user.shell is not a known field'],
      ['shell: relative', set('shell', 'bash'), 'shell must be an absolute path like /bin/bash'],
      ['working_directory: absolute', set('working_directory', '/tmp'), 'working_directory must be a path relative to the home directory'],
      [
        'working_directory: escapes',
        set('working_directory', 'a/../../etc'),
        'working_directory must be a path relative to the home directory',
      ],
      ['working_directory: missing', remove('working_directory'), 'working_directory is required'],
      ['ports: not a list', set('ports', { http: 8000 }), 'ports must be a list of at most 20 mappings with name, port and protocol'],
      ['ports.0.name: bad', set('ports', [{ name: 'HTTP', port: 8000, protocol: 'TCP' }]), 'ports.0.name must be a port name like http'],
      [
        'ports.0.port: too big',
        set('ports', [{ name: 'http', port: 70000, protocol: 'TCP' }]),
        'ports.0.port must be an integer from 1 to 65535',
      ],
      ['ports.0.protocol: bad', set('ports', [{ name: 'http', port: 8000, protocol: 'tcp' }]), 'ports.0.protocol must be TCP or UDP'],
      [
        'ports.0: unknown field',
        set('ports', [{ name: 'http', port: 8000, protocol: 'TCP', host: 1 }]),
        'ports.0.host is not a known field',
      ],
      [
        'environment_variables: bad name',
        set('environment_variables', { '1ABC': 'x' }),
        'environment_variables must map at most 100 names (letters, digits and _, not starting with a digit) to strings ("1ABC" is not a variable name)',
      ],
      ['environment_variables: dash', set('environment_variables', { 'MY-VAR': 'x' }), '"MY-VAR" is not a variable name'],
      [
        'environment_variables: number',
        set('environment_variables', { PORT: 8000 }),
        'the value of PORT is not a string (quote numbers and booleans in YAML: "1")',
      ],
      ['environment_variables: list', set('environment_variables', ['A=1']), 'environment_variables must map'],
      ['startup: missing', remove('startup'), 'startup is required'],
      [
        'startup.system: not a list',
        set('startup.system', 'apt-get install tmux'),
        'startup.system must be a list of at most 50 non-empty shell steps',
      ],
      [
        'startup.user: empty step',
        set('startup.user', ['']),
        'startup.user must be a list of at most 50 non-empty shell steps of at most 8192 characters (it has "")',
      ],
      ['startup: unknown field', set('startup.root', []), 'startup.root is not a known field'],
      [
        'required_commands: path',
        set('required_commands', ['/bin/bash']),
        'required_commands must be a list of at most 50 command names (A-Z, a-z, 0-9, ., _, + and -), each once (it has "/bin/bash")',
      ],
      ['required_commands: spaces', set('required_commands', ['git status']), 'required_commands must be a list'],
      ['required_commands: dots', set('required_commands', ['..']), '(it has "..")'],
      ['required_commands: repeated', set('required_commands', ['git', 'git']), '(it repeats "git")'],
      [
        'default_resources.cpu: bytes',
        set('default_resources.cpu', '1Gi'),
        'default_resources.cpu must be a Kubernetes CPU quantity like 500m, 1 or 2',
      ],
      ['default_resources.cpu: zero', set('default_resources.cpu', '0m'), 'default_resources.cpu must be a Kubernetes CPU quantity'],
      [
        'default_resources.memory: no unit',
        set('default_resources.memory', '1024'),
        'default_resources.memory must be a Kubernetes quantity like 512Mi or 1Gi',
      ],
      [
        'default_resources.memory: GB',
        set('default_resources.memory', '1GB'),
        'default_resources.memory must be a Kubernetes quantity like 512Mi or 1Gi',
      ],
      [
        'default_resources.storage: zero',
        set('default_resources.storage', '0Gi'),
        'default_resources.storage must be a Kubernetes quantity like 512Mi or 1Gi',
      ],
      ['default_resources.storage: missing', remove('default_resources.storage'), 'default_resources.storage is required'],
      ['run_as_non_root: a string', set('run_as_non_root', 'yes'), 'run_as_non_root must be true or false'],
      ['an unknown field', set('startup_commands', ['ls']), 'startup_commands is not a known field'],
      ['a missing field', remove('display_name'), 'display_name is required'],
    ];
    it.each(cases)('%s', (_label, patch, message) => {
      const refused = refusal(patch);
      expect(refused).not.toBeNull();
      expect(refused).toMatch(/^templates\/sample\.yaml: /);
      expect(refused).toContain(message);
    });

    it('the memory example of the documentation', () => {
      expect(refusal((doc) => (set('name', 'python')(doc), set('default_resources.memory', 'lots')(doc)), 'templates/python.yaml')).toBe(
        'templates/python.yaml: default_resources.memory must be a Kubernetes quantity like 512Mi or 1Gi',
      );
    });

    it('reports every bad field of a file at once, one message per field', () => {
      const refused = refusal((doc) => {
        set('version', 'one')(doc);
        set('default_resources.memory', '1')(doc);
      });
      expect(refused).toBe(
        'templates/sample.yaml: version must be a semantic version like 1.2.0; default_resources.memory must be a Kubernetes quantity like 512Mi or 1Gi',
      );
    });

    it('carries field errors with dotted paths and rule codes', () => {
      try {
        parseTemplateFile(stringify({ ...valid(), ports: [{ name: 'http', port: 0, protocol: 'TCP' }] }), 'x/sample.yaml');
        expect.unreachable();
      } catch (error) {
        expect((error as TemplateFileError).file).toBe('x/sample.yaml');
        expect((error as TemplateFileError).errors).toEqual([
          { field: 'ports.0.port', message: 'ports.0.port must be an integer from 1 to 65535', code: 'port' },
        ]);
      }
    });
  });

  describe('rules across fields', () => {
    it('the name must be the file name', () => {
      expect(refusal(() => undefined, 'templates/other.yaml')).toBe(
        'templates/other.yaml: name must be "other", the file name without .yaml (got "sample")',
      );
    });

    it('default_port must be one of the ports', () => {
      expect(refusal(set('default_port', 9000))).toBe(
        'templates/sample.yaml: default_port must be one of the ports listed in ports (9000 is not)',
      );
      expect(refusal((doc) => (set('ports', [])(doc), set('default_port', null)(doc)))).toBeNull();
    });

    it('port names and port numbers are not repeated', () => {
      const refused = refusal(
        set('ports', [
          { name: 'http', port: 8000, protocol: 'TCP' },
          { name: 'http', port: 8000, protocol: 'TCP' },
          { name: 'dns', port: 8000, protocol: 'UDP' },
        ]),
      );
      expect(refused).toBe('templates/sample.yaml: ports.1.name repeats "http"; ports.1.port repeats 8000/TCP');
    });

    it('run_as_non_root needs a user other than root', () => {
      expect(refusal((doc) => (set('run_as_non_root', true)(doc), set('user.uid', 0)(doc)))).toBe(
        'templates/sample.yaml: run_as_non_root cannot be true when user.uid is 0 (root)',
      );
      // Without system steps, which need root.
      expect(refusal((doc) => (set('run_as_non_root', true)(doc), set('startup.system', [])(doc)))).toBeNull();
    });

    it('system steps need the root opt-in (run_as_non_root: false), which only an image of its own may take', () => {
      // The sample: a custom image, opted in to root, with system steps.
      expect(refusal(() => undefined)).toBeNull();
      expect(refusal(set('run_as_non_root', true))).toBe(
        'templates/sample.yaml: startup.system runs as root in the container at every start: it needs run_as_non_root: false (root opt-in, only for an image of your own), or move the steps into the image',
      );
      const own =
        (image: string, runAsNonRoot: boolean, system: string[]): Patch =>
        (doc) => (set('image', image)(doc), set('run_as_non_root', runAsNonRoot)(doc), set('startup.system', system)(doc));
      expect(refusal(own('devpocket/env-python:1', true, ['apt-get install -y tmux']))).toBe(
        "templates/sample.yaml: startup.system must be empty with DevPocket's own image devpocket/env-python:1, which has its tools installed and runs as its user: move the steps to startup.user, or into an image of your own",
      );
      for (const image of [
        'devpocket/env-python:1',
        'registry.example.com/devpocket/env-python:2',
        'docker.io/devpocket/env-coding-agent',
      ]) {
        expect(refusal(own(image, false, []))).toBe(
          `templates/sample.yaml: run_as_non_root must be true with DevPocket's own image ${image}, which runs as its user without root (root is only for an image of your own)`,
        );
        expect(refusal(own(image, true, []))).toBeNull();
      }
      // Not DevPocket's own: root stays possible (without system steps too).
      for (const image of ['devpocket/server:1', 'example.com/devpocket-env/python:1', 'python:3.12-bookworm']) {
        expect(refusal(own(image, false, []))).toBeNull();
      }
      const refused = checkTemplateDefinition({ ...valid(), run_as_non_root: true });
      expect(refused.ok ? [] : refused.errors).toEqual([expect.objectContaining({ field: 'startup.system', code: 'systemStepsNeedRoot' })]);
    });
  });

  describe('what is not a template file', () => {
    it('invalid YAML, with the line', () => {
      expect(() => parseTemplateFile('name: [unclosed\n', 'templates/sample.yaml')).toThrow(
        /^templates\/sample\.yaml: not valid YAML: .* at line \d+, column \d+$/,
      );
    });

    it('a key given twice', () => {
      expect(() => parseTemplateFile('name: a\nname: b\n', 'templates/sample.yaml')).toThrow(
        /^templates\/sample\.yaml: not valid YAML: .*unique/i,
      );
    });

    it('an empty file or a list', () => {
      for (const text of ['', '# nothing\n', '- a\n- b\n', 'just text\n']) {
        expect(() => parseTemplateFile(text, 'templates/sample.yaml')).toThrow(
          'templates/sample.yaml: the file must hold one YAML mapping of template fields',
        );
      }
    });
  });

  describe('Kubernetes quantities', () => {
    it('converts CPU to millicores and memory or storage to bytes', () => {
      expect(['500m', '1', '2', '0.25', '1.5'].map(cpuMillicores)).toEqual([500, 1000, 2000, 250, 1500]);
      expect(['1Gi', '1Ki', '512Mi', '1G', '1.5Gi', '1k'].map(quantityBytes)).toEqual([
        2 ** 30,
        1024,
        512 * 2 ** 20,
        1e9,
        1.5 * 2 ** 30,
        1000,
      ]);
      expect(['1Gi', '-1', 'm', '1.0001', ''].map(cpuMillicores)).toEqual([null, null, null, null, null]);
      expect(['1', '1GB', '1gi', 'Gi', '-1Gi'].map(quantityBytes)).toEqual([null, null, null, null, null]);
    });
  });

  describe('content hash', () => {
    const definition = (): TemplateDefinition => parseTemplateFile(stringify(valid()), 'templates/sample.yaml');

    it('ignores comments, key order and formatting', () => {
      const reordered = Object.fromEntries(Object.entries(valid()).reverse());
      const text = `# a comment\n${stringify(reordered, { indent: 4 })}`;
      expect(templateContentHash(parseTemplateFile(text, 'templates/sample.yaml'))).toBe(templateContentHash(definition()));
    });

    it('changes with any value', () => {
      const changed = { ...definition(), environmentVariables: { LANG: 'C.UTF-8', _PRIVATE_1: 'y' } };
      expect(templateContentHash(changed)).not.toBe(templateContentHash(definition()));
    });
  });

  describe('changes (the admin update)', () => {
    const definition = (): TemplateDefinition => parseTemplateFile(stringify(valid()), 'templates/sample.yaml');

    it('applies the given fields and validates the result as a whole', () => {
      const result = applyTemplateChanges(definition(), { version: '1.3.0', iconUrl: 'https://example.com/i.png', documentationUrl: null });
      expect(result.ok && result.definition).toMatchObject({
        version: '1.3.0',
        iconUrl: 'https://example.com/i.png',
        documentationUrl: null,
        name: 'sample',
      });
    });

    it('refuses null for a required field and a result that breaks a rule across fields', () => {
      const cleared = applyTemplateChanges(definition(), { displayName: null });
      expect(cleared.ok ? [] : cleared.errors).toEqual([
        { field: 'display_name', message: 'display_name is required', code: 'displayName' },
      ]);
      const orphanPort = applyTemplateChanges(definition(), { ports: [] });
      expect(orphanPort.ok ? [] : orphanPort.errors.map((e) => e.field)).toEqual(['default_port']);
    });

    it('refuses what a file would refuse', () => {
      expect(checkTemplateDefinition({ ...valid(), version: 'latest' }).ok).toBe(false);
      expect(checkTemplateDefinition(null).ok).toBe(false);
      expect(checkTemplateDefinition(valid()).ok).toBe(true);
    });
  });
});

describe('semantic versions', () => {
  it('recognises valid versions only', () => {
    for (const v of ['0.0.1', '1.2.3', '10.20.30', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0+build.5', '1.0.0-rc.1+sha.abc'])
      expect(isSemver(v)).toBe(true);
    for (const v of ['1', '1.0', 'v1.0.0', '01.0.0', '1.0.0-', '1.0.0-01', '', ' 1.0.0', 1]) expect(isSemver(v)).toBe(false);
  });

  it('orders by precedence (semver.org §11)', () => {
    const ordered = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.1.0',
      '1.10.0',
      '2.0.0',
    ];
    for (let i = 0; i < ordered.length - 1; i += 1) {
      expect(compareSemver(ordered[i], ordered[i + 1])).toBe(-1);
      expect(compareSemver(ordered[i + 1], ordered[i])).toBe(1);
    }
    expect(compareSemver('1.0.0+a', '1.0.0+b')).toBe(0);
    expect(() => compareSemver('1.0', '1.0.0')).toThrow('not a semantic version: 1.0');
  });
});

describe('the shipped templates', () => {
  const files = readdirSync(TEMPLATES_DIR).filter((f) => f.endsWith('.yaml'));
  const load = (file: string): TemplateDefinition =>
    parseTemplateFile(readFileSync(join(TEMPLATES_DIR, file), 'utf8'), `templates/${file}`);

  it('include the base set', () => {
    expect(files.map((f) => f.replace(/\.yaml$/, '')).sort()).toEqual(
      expect.arrayContaining(['coding-agent', 'debian', 'golang', 'nodejs', 'python', 'rust', 'ubuntu']),
    );
  });

  it.each(files)('%s is valid, fits the free plan, needs bash and tmux, and guards its user steps', (file) => {
    const definition = load(file);
    const free = PLANS.free.maxResources;
    expect(cpuMillicores(definition.defaultResources.cpu)!).toBeLessThanOrEqual(cpuMillicores(free.cpu)!);
    expect(quantityBytes(definition.defaultResources.memory)!).toBeLessThanOrEqual(quantityBytes(free.memory)!);
    expect(quantityBytes(definition.defaultResources.storage)!).toBeLessThanOrEqual(quantityBytes(free.storage)!);
    expect(definition.requiredCommands).toEqual(expect.arrayContaining(['bash', 'tmux', 'git']));
    // DevPocket's own image of the template (images/<name>/Containerfile), run as its user: nothing as root.
    expect(definition.image).toBe(`devpocket/env-${definition.name}:1`);
    expect(definition.runAsNonRoot).toBe(true);
    expect(definition.startup.system).toEqual([]);
    const containerfile = readFileSync(join(TEMPLATES_DIR, '..', 'images', definition.name, 'Containerfile'), 'utf8');
    expect(containerfile).toMatch(new RegExp(`prepare\\.sh ${definition.user.name} ${definition.user.home}( |\\n|$)`));
    expect(containerfile).toContain(`USER ${definition.user.uid}:${definition.user.gid}`);
    // User steps write their dotfile blocks once (a marker is checked first), so a re-provision does not repeat them.
    for (const step of definition.startup.user.filter((s) => s.includes('>> "$HOME/.bashrc"')))
      expect(step).toMatch(/grep -qs '[^']+' "\$HOME\/\.bashrc" \|\|/);
  });

  it('python creates its virtualenv only when python3 exists and none is there yet', () => {
    const steps = load('python.yaml').startup.user.join('\n');
    expect(steps).toContain('command -v python3');
    expect(steps).toContain('[ ! -x "$HOME/.venv/bin/python" ]');
    expect(steps).toContain('python3 -m venv "$HOME/.venv"');
  });

  it('coding-agent installs the agents into the user prefix, a failure being logged and not fatal', () => {
    const definition = load('coding-agent.yaml');
    const steps = definition.startup.user.join('\n');
    for (const pkg of ['@anthropic-ai/claude-code', '@openai/codex', '@google/gemini-cli']) expect(steps).toContain(pkg);
    expect(steps).toContain('--prefix "$HOME/.npm-global"');
    expect(steps).toMatch(/\|\| echo "devpocket: could not install \$package; continuing without it" >&2/);
    expect(definition.image).toBe('devpocket/env-coding-agent:1');
    expect(definition.requiredCommands).toEqual(expect.arrayContaining(['node', 'npm']));
  });
});
