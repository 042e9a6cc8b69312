import type { PlanName } from './plans.js';

export const ROLES = ['user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** A user as the rest of the application sees it: a plain object, never a Mongoose document. */
export interface User {
  id: string;
  username: string;
  email: string;
  /** argon2id hash; null for accounts that only sign in with Google. Never leaves the server. */
  passwordHash: string | null;
  fullName: string | null;
  avatarUrl: string | null;
  preferredRegion: string | null;
  isActive: boolean;
  isVerified: boolean;
  role: Role;
  plan: PlanName;
  failedLoginCount: number;
  lockedUntil: Date | null;
  lastLogin: Date | null;
  deletionRequestedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The case-insensitive form of a username, stored beside it and unique. */
export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
