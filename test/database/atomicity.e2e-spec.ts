/**
 * FerretDB v1 runs update and findAndModify as unlocked read-then-write; the devdb front
 * (tools/devdb/front.go) serializes write commands so that they behave atomically, as on MongoDB.
 * Without the front these tests fail: lost $inc updates, many "winners" of a conditional update.
 */
import { MongoClient } from 'mongodb';
import mongoose, { type Connection, Schema } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestDatabase } from '../support/database.js';

const CONCURRENCY = 200;
const POOL_SIZE = 50;

interface Counter {
  _id: string;
  n: number;
}

interface Machine {
  _id: string;
  state: 'stopped' | 'starting';
}

function times<T>(count: number, action: () => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, action));
}

describe('write atomicity of the test database', () => {
  const database = createTestDatabase('atomicity');
  let client: MongoClient;
  let connection: Connection;

  beforeAll(async () => {
    client = new MongoClient(database.uri, { maxPoolSize: POOL_SIZE, minPoolSize: POOL_SIZE });
    await client.connect();
    connection = await mongoose.createConnection(database.uri, { maxPoolSize: POOL_SIZE }).asPromise();
  });

  afterAll(async () => {
    await connection.close();
    await client.close();
    await database.drop();
  });

  it(`applies ${CONCURRENCY} concurrent $inc on one document`, async () => {
    const counters = client.db().collection<Counter>('counters');
    await counters.insertOne({ _id: 'hits', n: 0 });

    await times(CONCURRENCY, () => counters.updateOne({ _id: 'hits' }, { $inc: { n: 1 } }));

    expect(await counters.findOne({ _id: 'hits' })).toEqual({ _id: 'hits', n: CONCURRENCY });
  });

  it(`lets exactly one of ${CONCURRENCY} concurrent conditional findOneAndUpdate win (driver)`, async () => {
    const machines = client.db().collection<Machine>('machines');
    await machines.insertOne({ _id: 'm1', state: 'stopped' });

    const results = await times(CONCURRENCY, () =>
      machines.findOneAndUpdate({ _id: 'm1', state: 'stopped' }, { $set: { state: 'starting' } }, { returnDocument: 'after' }),
    );

    const winners = results.filter((doc) => doc !== null);
    expect(winners).toEqual([{ _id: 'm1', state: 'starting' }]);
  });

  it(`lets exactly one of ${CONCURRENCY} concurrent conditional findOneAndUpdate win (mongoose)`, async () => {
    const MachineModel = connection.model<Machine>(
      'Machine',
      new Schema<Machine>({ _id: String, state: String }, { collection: 'mongoose_machines', versionKey: false }),
    );
    await MachineModel.create({ _id: 'm2', state: 'stopped' });

    const results = await times(CONCURRENCY, () =>
      MachineModel.findOneAndUpdate({ _id: 'm2', state: 'stopped' }, { $set: { state: 'starting' } }, { returnDocument: 'after' })
        .lean()
        .exec(),
    );

    const winners = results.filter((doc) => doc !== null);
    expect(winners).toEqual([{ _id: 'm2', state: 'starting' }]);
  });
});
