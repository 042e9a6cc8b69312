import { Logger, Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import type { Connection } from 'mongoose';
import { ProcessLifecycle } from '../common/lifecycle/process-lifecycle.js';
import { type DatabaseConfig, databaseConfig } from '../config/namespaces/database.config.js';

const logger = new Logger('Database');

/** Logs connection state changes once, so an operator sees the database leave and come back. */
function watchConnection(connection: Connection, lifecycle: ProcessLifecycle): void {
  connection.on('disconnected', () => {
    if (!lifecycle.isShuttingDown) logger.warn('MongoDB connection lost; requests answer 503 until it returns');
  });
  connection.on('reconnected', () => logger.log('MongoDB connection restored'));
  connection.on('error', (error: Error) => logger.warn(`MongoDB connection error: ${error.message}`));
}

/**
 * The one MongoDB connection (Mongoose). Commands are not buffered: while the database is away an
 * operation waits at most `timeoutMs` for a server and then fails, which the exception filter
 * turns into 503. The driver reconnects by itself when the database returns. Schemas declare
 * their indexes; Mongoose creates them at boot (autoIndex).
 */
@Module({
  imports: [
    MongooseModule.forRootAsync({
      inject: [databaseConfig.KEY, ProcessLifecycle],
      useFactory: (config: DatabaseConfig, lifecycle: ProcessLifecycle) => {
        if (config.uri === null) throw new Error('database.uri must be resolved before the application starts (resolveDatabase)');
        return {
          uri: config.uri,
          dbName: config.dbName,
          bufferCommands: false,
          autoIndex: true,
          autoCreate: true,
          serverSelectionTimeoutMS: config.timeoutMs,
          connectTimeoutMS: config.timeoutMs,
          socketTimeoutMS: 0,
          heartbeatFrequencyMS: 2_000,
          retryAttempts: config.connectRetries,
          retryDelay: 1_000,
          onConnectionCreate: (connection: Connection) => watchConnection(connection, lifecycle),
        };
      },
    }),
  ],
})
export class DatabaseModule {}
