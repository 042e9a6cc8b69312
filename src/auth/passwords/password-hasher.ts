import { Injectable, OnModuleInit } from '@nestjs/common';
import argon2 from 'argon2';

/** Hashes and verifies passwords. Abstract so tests and benchmarks can see exactly what runs. */
export abstract class PasswordHasher {
  abstract hash(password: string): Promise<string>;
  abstract verify(hash: string, password: string): Promise<boolean>;
  /**
   * Spends the same effort as a real verification against nothing, so that "no such account"
   * takes as long as "wrong password".
   */
  abstract verifyNothing(password: string): Promise<void>;
}

/**
 * argon2id with OWASP's recommended minimum (19 MiB, 2 iterations, 1 lane). The native binding
 * runs on libuv's thread pool, so hashing never blocks the event loop.
 */
@Injectable()
export class Argon2PasswordHasher extends PasswordHasher implements OnModuleInit {
  private static readonly OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
  private dummyHash = '';

  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.hash('dummy password that matches nothing');
  }

  hash(password: string): Promise<string> {
    return argon2.hash(password, Argon2PasswordHasher.OPTIONS);
  }

  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false;
    }
  }

  async verifyNothing(password: string): Promise<void> {
    await this.verify(this.dummyHash, password);
  }
}
