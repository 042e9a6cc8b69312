import { Body, Controller, Get, Module, Param, Post } from '@nestjs/common';
import { InjectModel, MongooseModule, Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Length, Max, Min, ValidateNested } from 'class-validator';
import { Model } from 'mongoose';
import { AppError } from '../../src/common/errors/app-error.js';
import { CommonError } from '../../src/common/errors/error-code.js';
import { Public } from '../../src/common/http/route-access.js';
import { RateLimit } from '../../src/common/rate-limit/rate-limit.decorator.js';

/**
 * A tiny module that exists only in tests: it gives the cross-cutting machinery (validation,
 * errors, rate limits, database failures, graceful shutdown) real routes to act on.
 */
@Schema({ collection: 'probe_items', timestamps: true })
class ProbeItem {
  @Prop({ required: true, unique: true })
  name!: string;

  @Prop({ required: true })
  count!: number;
}
const ProbeItemSchema = SchemaFactory.createForClass(ProbeItem);

class ProbeLimitsDto {
  @IsInt()
  @Min(1)
  @Max(10)
  cpu!: number;
}

class CreateProbeItemDto {
  @IsString()
  @Length(1, 20)
  name!: string;

  @IsInt()
  @Min(0)
  count!: number;

  @IsOptional()
  @ValidateNested()
  @Type(() => ProbeLimitsDto)
  limits?: ProbeLimitsDto;
}

class ProbeSignInDto {
  @IsString()
  account!: string;
}

/** Lets a test hold a request open: `ProbeGate.hold()` then `ProbeGate.release()`. */
export class ProbeGate {
  private static waiting: (() => void) | null = null;
  private static opened: Promise<void> = Promise.resolve();
  /** Requests currently held at the gate. */
  static held = 0;

  static hold(): void {
    ProbeGate.opened = new Promise((resolve) => (ProbeGate.waiting = resolve));
  }

  static release(): void {
    ProbeGate.waiting?.();
  }

  static async wait(): Promise<void> {
    ProbeGate.held += 1;
    try {
      await ProbeGate.opened;
    } finally {
      ProbeGate.held -= 1;
    }
  }
}

@Public()
@Controller('probe')
class ProbeController {
  constructor(@InjectModel(ProbeItem.name) private readonly items: Model<ProbeItem>) {}

  @Post('items')
  async create(@Body() body: CreateProbeItemDto): Promise<{ name: string; count: number }> {
    const created = await this.items.create({ name: body.name, count: body.count });
    return { name: created.name, count: created.count };
  }

  @Get('items/:name')
  async find(@Param('name') name: string): Promise<{ name: string; count: number }> {
    const found = await this.items.findOne({ name }).lean().exec();
    if (!found) throw new AppError(CommonError.NotFound, `No probe item named ${name}`);
    return { name: found.name, count: found.count };
  }

  @Get('slow')
  async slow(): Promise<{ done: true }> {
    await ProbeGate.wait();
    return { done: true };
  }

  @Get('limited')
  @RateLimit({ name: 'probe-limited', limit: 2, ttlSeconds: 60, key: 'ip' })
  limited(): { ok: true } {
    return { ok: true };
  }

  @Post('sign-in')
  @RateLimit({
    name: 'probe-account',
    limit: 2,
    ttlSeconds: 60,
    key: (req) =>
      typeof (req.body as { account?: unknown } | undefined)?.account === 'string' ? (req.body as { account: string }).account : undefined,
  })
  signIn(@Body() _body: ProbeSignInDto): { ok: true } {
    return { ok: true };
  }

  @Get('boom')
  boom(): never {
    throw new Error('secret internal failure details');
  }
}

@Module({
  imports: [MongooseModule.forFeature([{ name: ProbeItem.name, schema: ProbeItemSchema }])],
  controllers: [ProbeController],
})
export class ProbeModule {}
