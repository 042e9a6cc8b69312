import { Module } from '@nestjs/common';
import { PreviewLinks } from './preview-links.js';
import { PreviewTokens } from './preview-tokens.js';

/**
 * The previews' addresses and tokens, without the proxy: imported by the environments module
 * (their answers carry preview addresses), while PreviewsModule, which needs environments, serves them.
 */
@Module({
  providers: [PreviewTokens, PreviewLinks],
  exports: [PreviewTokens, PreviewLinks],
})
export class PreviewLinksModule {}
