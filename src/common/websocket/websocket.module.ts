import { Global, Module } from '@nestjs/common';
import { WebSocketRouter } from './websocket-router.js';

@Global()
@Module({ providers: [WebSocketRouter], exports: [WebSocketRouter] })
export class WebSocketModule {}
