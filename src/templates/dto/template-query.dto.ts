import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional } from 'class-validator';

import { TEMPLATE_CATEGORIES, TEMPLATE_STATUSES, type TemplateCategory, type TemplateStatus } from '../template.js';
import { Rule } from './template-field-rules.js';

const emptyToUndefined = ({ value }: { value: unknown }): unknown => (value === '' ? undefined : value);
const toBoolean = ({ value }: { value: unknown }): unknown => (value === 'true' ? true : value === 'false' ? false : value);

export class TemplateLookupQueryDto {
  @ApiPropertyOptional({ type: Boolean, description: 'Admins only: include soft-deleted templates' })
  @Transform(toBoolean)
  @IsOptional()
  @Rule({ code: 'isBoolean', test: (v) => typeof v === 'boolean', must: 'must be true or false' })
  include_deleted?: boolean;
}

export class TemplateListQueryDto extends TemplateLookupQueryDto {
  @ApiPropertyOptional({ type: String, enum: [...TEMPLATE_CATEGORIES, ''], description: 'Only this category; empty: every category' })
  @Transform(emptyToUndefined)
  @IsOptional()
  @Rule({
    code: 'category',
    test: (v) => (TEMPLATE_CATEGORIES as readonly unknown[]).includes(v),
    must: `must be one of ${TEMPLATE_CATEGORIES.join(', ')}`,
  })
  category?: TemplateCategory;

  @ApiPropertyOptional({ type: String, enum: [...TEMPLATE_STATUSES, ''], description: 'Only this status; empty: every status' })
  @Transform(emptyToUndefined)
  @IsOptional()
  @Rule({
    code: 'status',
    test: (v) => (TEMPLATE_STATUSES as readonly unknown[]).includes(v),
    must: `must be one of ${TEMPLATE_STATUSES.join(', ')}`,
  })
  status?: TemplateStatus;
}
