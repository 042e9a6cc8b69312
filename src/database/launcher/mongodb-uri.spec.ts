import { describe, expect, it } from 'vitest';

import { redactUri, withDatabaseName, withoutDatabaseName } from './mongodb-uri.js';

describe('withDatabaseName', () => {
  it.each([
    ['mongodb://127.0.0.1:27017', 'mongodb://127.0.0.1:27017/t_x'],
    ['mongodb://127.0.0.1:27017/', 'mongodb://127.0.0.1:27017/t_x'],
    ['mongodb://127.0.0.1:27017/app', 'mongodb://127.0.0.1:27017/t_x'],
    ['mongodb://u:p@h1:1,h2:2/app?replicaSet=rs&authSource=admin', 'mongodb://u:p@h1:1,h2:2/t_x?replicaSet=rs&authSource=admin'],
    ['mongodb://h1?directConnection=true', 'mongodb://h1/t_x?directConnection=true'],
    ['mongodb+srv://u:p@cluster.example.net/app', 'mongodb+srv://u:p@cluster.example.net/t_x'],
  ])('%s', (uri, expected) => {
    expect(withDatabaseName(uri, 't_x')).toBe(expected);
  });

  it('rejects what is not a MongoDB URI', () => {
    expect(() => withDatabaseName('postgres://u:secret@h/db', 'x')).toThrow(/Not a MongoDB connection string/);
  });
});

describe('withoutDatabaseName', () => {
  it('drops the database name and keeps options', () => {
    expect(withoutDatabaseName('mongodb://h:1/app')).toBe('mongodb://h:1');
    expect(withoutDatabaseName('mongodb://h:1/app?w=majority')).toBe('mongodb://h:1/?w=majority');
  });
});

describe('redactUri', () => {
  it('hides the password', () => {
    expect(redactUri('mongodb://user:s3cret@h:1/db')).toBe('mongodb://user:***@h:1/db');
    expect(redactUri('mongodb://h:1/db')).toBe('mongodb://h:1/db');
  });
});
