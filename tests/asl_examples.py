"""The article's state machines (step-functions-article.md) as test inputs.

Each comes in two flavours: JSONPath (as in the article, but calling Lambda through
`arn:aws:states:::lambda:invoke` with `Parameters`) and JSONata (`"QueryLanguage": "JSONata"`,
`Arguments`, Choice `Condition`s). Function ARNs are SAM `DefinitionSubstitutions`
(`${ValidatePaymentFunctionArn}`), so diagrams show `ValidatePayment`.
"""

from __future__ import annotations

from typing import Any

HELLO_WORLD_JSONPATH: dict[str, Any] = {
    "Comment": "Hello World Workflow",
    "StartAt": "HelloWorld",
    "States": {
        "HelloWorld": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${HelloWorldFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        }
    },
}

HELLO_WORLD_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "Comment": "Hello World Workflow",
    "StartAt": "HelloWorld",
    "States": {
        "HelloWorld": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${HelloWorldFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        }
    },
}

ORDER_JSONPATH: dict[str, Any] = {
    "Comment": "Order Processing Workflow",
    "StartAt": "ValidatePayment",
    "States": {
        "ValidatePayment": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ValidatePaymentFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "CheckInventory",
            "Retry": [
                {
                    "ErrorEquals": ["States.TaskFailed"],
                    "IntervalSeconds": 2,
                    "MaxAttempts": 3,
                    "BackoffRate": 2.0,
                }
            ],
            "Catch": [{"ErrorEquals": ["PaymentError"], "Next": "PaymentFailed"}],
        },
        "CheckInventory": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${CheckInventoryFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "CreateOrder",
            "Catch": [{"ErrorEquals": ["OutOfStock"], "Next": "RefundPayment"}],
        },
        "CreateOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${CreateOrderFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "SendEmail",
        },
        "SendEmail": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${SendEmailFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "Success",
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 5}],
        },
        "Success": {"Type": "Succeed"},
        "PaymentFailed": {
            "Type": "Fail",
            "Error": "PaymentValidationFailed",
            "Cause": "Payment could not be validated",
        },
        "RefundPayment": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${RefundPaymentFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "OrderFailed",
        },
        "OrderFailed": {
            "Type": "Fail",
            "Error": "OrderProcessingFailed",
            "Cause": "Inventory unavailable, payment refunded",
        },
    },
}

ORDER_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "Comment": "Order Processing Workflow",
    "StartAt": "ValidatePayment",
    "States": {
        "ValidatePayment": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${ValidatePaymentFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "CheckInventory",
            "Retry": [
                {
                    "ErrorEquals": ["States.TaskFailed"],
                    "IntervalSeconds": 2,
                    "MaxAttempts": 3,
                    "BackoffRate": 2.0,
                }
            ],
            "Catch": [{"ErrorEquals": ["PaymentError"], "Next": "PaymentFailed"}],
        },
        "CheckInventory": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${CheckInventoryFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "CreateOrder",
            "Catch": [{"ErrorEquals": ["OutOfStock"], "Next": "RefundPayment"}],
        },
        "CreateOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${CreateOrderFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "SendEmail",
        },
        "SendEmail": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${SendEmailFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "Success",
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 5}],
        },
        "Success": {"Type": "Succeed"},
        "PaymentFailed": {
            "Type": "Fail",
            "Error": "PaymentValidationFailed",
            "Cause": "Payment could not be validated",
        },
        "RefundPayment": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${RefundPaymentFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "OrderFailed",
        },
        "OrderFailed": {
            "Type": "Fail",
            "Error": "OrderProcessingFailed",
            "Cause": "Inventory unavailable, payment refunded",
        },
    },
}

PARALLEL_NOTIFICATIONS_JSONPATH: dict[str, Any] = {
    "StartAt": "ProcessOrder",
    "States": {
        "ProcessOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${CreateOrderFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "ParallelTasks",
        },
        "ParallelTasks": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "SendEmail",
                    "States": {
                        "SendEmail": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {
                                "FunctionName": "${SendEmailFunctionArn}",
                                "Payload.$": "$",
                            },
                            "OutputPath": "$.Payload",
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "UpdateAnalytics",
                    "States": {
                        "UpdateAnalytics": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {
                                "FunctionName": "${UpdateAnalyticsFunctionArn}",
                                "Payload.$": "$",
                            },
                            "OutputPath": "$.Payload",
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "NotifyWarehouse",
                    "States": {
                        "NotifyWarehouse": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {
                                "FunctionName": "${NotifyWarehouseFunctionArn}",
                                "Payload.$": "$",
                            },
                            "OutputPath": "$.Payload",
                            "End": True,
                        }
                    },
                },
            ],
            "End": True,
        },
    },
}

PARALLEL_NOTIFICATIONS_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "StartAt": "ProcessOrder",
    "States": {
        "ProcessOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${CreateOrderFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "ParallelTasks",
        },
        "ParallelTasks": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "SendEmail",
                    "States": {
                        "SendEmail": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Arguments": {
                                "FunctionName": "${SendEmailFunctionArn}",
                                "Payload": "{% $states.input %}",
                            },
                            "Output": "{% $states.result.Payload %}",
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "UpdateAnalytics",
                    "States": {
                        "UpdateAnalytics": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Arguments": {
                                "FunctionName": "${UpdateAnalyticsFunctionArn}",
                                "Payload": "{% $states.input %}",
                            },
                            "Output": "{% $states.result.Payload %}",
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "NotifyWarehouse",
                    "States": {
                        "NotifyWarehouse": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Arguments": {
                                "FunctionName": "${NotifyWarehouseFunctionArn}",
                                "Payload": "{% $states.input %}",
                            },
                            "Output": "{% $states.result.Payload %}",
                            "End": True,
                        }
                    },
                },
            ],
            "End": True,
        },
    },
}

ORDER_SIZE_JSONPATH: dict[str, Any] = {
    "StartAt": "CalculateTotal",
    "States": {
        "CalculateTotal": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${CalculateTotalFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "CheckOrderSize",
        },
        "CheckOrderSize": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.total", "NumericGreaterThan": 1000, "Next": "ManagerApproval"},
                {"Variable": "$.total", "NumericGreaterThan": 100, "Next": "StandardProcessing"},
            ],
            "Default": "ExpressProcessing",
        },
        "ManagerApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ManagerApprovalFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
        "StandardProcessing": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${StandardProcessingFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
        "ExpressProcessing": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ExpressProcessingFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
    },
}

ORDER_SIZE_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "StartAt": "CalculateTotal",
    "States": {
        "CalculateTotal": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${CalculateTotalFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "CheckOrderSize",
        },
        "CheckOrderSize": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $states.input.total > 1000 %}", "Next": "ManagerApproval"},
                {"Condition": "{% $states.input.total > 100 %}", "Next": "StandardProcessing"},
            ],
            "Default": "ExpressProcessing",
        },
        "ManagerApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${ManagerApprovalFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
        "StandardProcessing": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${StandardProcessingFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
        "ExpressProcessing": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${ExpressProcessingFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
    },
}

FRAUD_RULE_JSONPATH: dict[str, Any] = {
    "Comment": "Fraud detection",
    "StartAt": "CheckRisk",
    "States": {
        "CheckRisk": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.riskScore", "NumericGreaterThan": 80},
                        {"Variable": "$.orderTotal", "NumericGreaterThan": 500},
                    ],
                    "Next": "BlockOrder",
                },
                {"Variable": "$.riskScore", "NumericGreaterThan": 50, "Next": "ManualReview"},
            ],
            "Default": "ApproveOrder",
        },
        "BlockOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${BlockOrderFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
        "ManualReview": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ManualReviewFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
        "ApproveOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ApproveOrderFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
    },
}

FRAUD_RULE_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "Comment": "Fraud detection",
    "StartAt": "CheckRisk",
    "States": {
        "CheckRisk": {
            "Type": "Choice",
            "Choices": [
                {
                    "Condition": "{% $states.input.riskScore > 80 and "
                    "$states.input.orderTotal > 500 %}",
                    "Next": "BlockOrder",
                },
                {"Condition": "{% $states.input.riskScore > 50 %}", "Next": "ManualReview"},
            ],
            "Default": "ApproveOrder",
        },
        "BlockOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${BlockOrderFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
        "ManualReview": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${ManualReviewFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
        "ApproveOrder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${ApproveOrderFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
    },
}

REMINDER_JSONPATH: dict[str, Any] = {
    "StartAt": "SendEmail",
    "States": {
        "SendEmail": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${SendEmailFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "WaitForReminder",
        },
        "WaitForReminder": {"Type": "Wait", "Seconds": 86400, "Next": "SendReminder"},
        "SendReminder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${SendReminderFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "End": True,
        },
    },
}

REMINDER_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "StartAt": "SendEmail",
    "States": {
        "SendEmail": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${SendEmailFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "WaitForReminder",
        },
        "WaitForReminder": {"Type": "Wait", "Seconds": 86400, "Next": "SendReminder"},
        "SendReminder": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${SendReminderFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
    },
}

BATCH_MAP_JSONPATH: dict[str, Any] = {
    "StartAt": "ProcessBatch",
    "States": {
        "ProcessBatch": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 100,
            "Iterator": {
                "StartAt": "ProcessItem",
                "States": {
                    "ProcessItem": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {
                            "FunctionName": "${ProcessItemFunctionArn}",
                            "Payload.$": "$",
                        },
                        "OutputPath": "$.Payload",
                        "End": True,
                    }
                },
            },
            "End": True,
        }
    },
}

BATCH_MAP_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "StartAt": "ProcessBatch",
    "States": {
        "ProcessBatch": {
            "Type": "Map",
            "Items": "{% $states.input.items %}",
            "MaxConcurrency": 100,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "ProcessItem",
                "States": {
                    "ProcessItem": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Arguments": {
                            "FunctionName": "${ProcessItemFunctionArn}",
                            "Payload": "{% $states.input %}",
                        },
                        "Output": "{% $states.result.Payload %}",
                        "End": True,
                    }
                },
            },
            "End": True,
        }
    },
}

IMAGE_MAP_JSONPATH: dict[str, Any] = {
    "Comment": "Process uploaded images",
    "StartAt": "GetImageList",
    "States": {
        "GetImageList": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ListS3ImagesFunctionArn}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Next": "ProcessImages",
        },
        "ProcessImages": {
            "Type": "Map",
            "ItemsPath": "$.images",
            "MaxConcurrency": 50,
            "Iterator": {
                "StartAt": "ResizeImage",
                "States": {
                    "ResizeImage": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {
                            "FunctionName": "${ResizeImageFunctionArn}",
                            "Payload.$": "$",
                        },
                        "OutputPath": "$.Payload",
                        "Next": "UploadThumbnail",
                    },
                    "UploadThumbnail": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {
                            "FunctionName": "${UploadThumbnailFunctionArn}",
                            "Payload.$": "$",
                        },
                        "OutputPath": "$.Payload",
                        "End": True,
                    },
                },
            },
            "End": True,
        },
    },
}

IMAGE_MAP_JSONATA: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "Comment": "Process uploaded images",
    "StartAt": "GetImageList",
    "States": {
        "GetImageList": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${ListS3ImagesFunctionArn}",
                "Payload": "{% $states.input %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Next": "ProcessImages",
        },
        "ProcessImages": {
            "Type": "Map",
            "Items": "{% $states.input.images %}",
            "MaxConcurrency": 50,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "ResizeImage",
                "States": {
                    "ResizeImage": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Arguments": {
                            "FunctionName": "${ResizeImageFunctionArn}",
                            "Payload": "{% $states.input %}",
                        },
                        "Output": "{% $states.result.Payload %}",
                        "Next": "UploadThumbnail",
                    },
                    "UploadThumbnail": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Arguments": {
                            "FunctionName": "${UploadThumbnailFunctionArn}",
                            "Payload": "{% $states.input %}",
                        },
                        "Output": "{% $states.result.Payload %}",
                        "End": True,
                    },
                },
            },
            "End": True,
        },
    },
}

JSONPATH: dict[str, dict[str, Any]] = {
    "hello_world": HELLO_WORLD_JSONPATH,
    "order": ORDER_JSONPATH,
    "parallel_notifications": PARALLEL_NOTIFICATIONS_JSONPATH,
    "order_size": ORDER_SIZE_JSONPATH,
    "fraud_rule": FRAUD_RULE_JSONPATH,
    "reminder": REMINDER_JSONPATH,
    "batch_map": BATCH_MAP_JSONPATH,
    "image_map": IMAGE_MAP_JSONPATH,
}
JSONATA: dict[str, dict[str, Any]] = {
    "hello_world": HELLO_WORLD_JSONATA,
    "order": ORDER_JSONATA,
    "parallel_notifications": PARALLEL_NOTIFICATIONS_JSONATA,
    "order_size": ORDER_SIZE_JSONATA,
    "fraud_rule": FRAUD_RULE_JSONATA,
    "reminder": REMINDER_JSONATA,
    "batch_map": BATCH_MAP_JSONATA,
    "image_map": IMAGE_MAP_JSONATA,
}
ALL: dict[str, dict[str, Any]] = {
    **{f"{k}/jsonpath": v for k, v in JSONPATH.items()},
    **{f"{k}/jsonata": v for k, v in JSONATA.items()},
}
