import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { RateLimitModule } from '../common/rate-limit/rate-limit.module.js';
import { EnvironmentsModule } from '../environments/environments.module.js';
import { PreviewAccess } from './preview-access.js';
import { PreviewLinksModule } from './preview-links.module.js';
import { PreviewProxy } from './preview-proxy.js';

/**
 * Web previews of environments' ports (docs/previews.md): `PreviewProxy` is mounted in front of the
 * application's middleware by `configureApp`, and the WebSocket adapter hands it preview upgrades.
 */
@Module({
  imports: [AuthModule, EnvironmentsModule, PreviewLinksModule, RateLimitModule],
  providers: [PreviewAccess, PreviewProxy],
  exports: [PreviewProxy],
})
export class PreviewsModule {}
